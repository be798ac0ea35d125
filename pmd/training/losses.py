"""FLAVA pretraining losses and the module that computes them for one batch.

Paired batches: global contrastive (GC) on the unmasked unimodal CLS embeddings, all-gathered
with gradients; ITM on ``[CLS_M]`` with in-batch negatives (random as in FLAVA, or hard ones
sampled from the GC similarities as in ALBEF); MMM-image (visual codes) and MMM-text on the
masked multimodal sequence. ITM negatives are excluded from MMM (their caption is another image's)
but stay GC rows: their unimodal image and caption still match.
Image-only batches: MIM; text-only batches: MLM. Nothing here reads a tensor back to the host.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pmd.training.config import LossConfig
from pmd.training.distributed import all_gather_with_grad, rank
from pmd.training.model import FlavaModel, MaskedPredictionHead


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor,
                     row_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of image→text and text→image cross-entropy: local rows against all ranks' columns
    (gathered with gradients). ``row_weight`` (B,) drops rows (ITM negatives); all ranks must
    hold the same local batch size."""
    img_all, txt_all = all_gather_with_grad(img), all_gather_with_grad(txt)
    b = img.shape[0]
    labels = torch.arange(b, device=img.device) + rank() * b
    li = F.cross_entropy(scale * img @ txt_all.T, labels, reduction="none")
    lt = F.cross_entropy(scale * txt @ img_all.T, labels, reduction="none")
    per_row = 0.5 * (li + lt)
    if row_weight is None:
        return per_row.mean()
    w = row_weight.float()
    return (per_row * w).sum() / w.sum().clamp(min=1.0)


def prediction_loss(head: MaskedPredictionHead, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``head`` on the hidden states of the masked positions (B,M,D), labels (B,M), −1 ignored.
    The encoders return only these rows, so the vocabulary logits are never computed elsewhere."""
    logits = head(hidden).float()
    total = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-1, reduction="sum")
    return total / (labels >= 0).sum().clamp(min=1)


def choose_negatives(ids: torch.Tensor, fraction: float, sims: torch.Tensor | None,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row pick a caption partner ≠ itself with a different caption; a random ``fraction`` of
    rows become ITM negatives. ``sims`` (B,B) given: partners sampled ∝ softmax(sims) (hard, ALBEF),
    else uniformly. Returns (partner index (B,), is_negative (B,) bool)."""
    b = ids.shape[0]
    same = (ids[:, None, :] == ids[None, :, :]).all(-1)  # identical captions (incl. the diagonal)
    logits = torch.zeros(b, b, device=ids.device) if sims is None else sims.float()
    logits = logits.masked_fill(same, float("-inf"))
    u = torch.rand(b, b, device=ids.device, generator=generator).clamp_(1e-9, 1 - 1e-9)
    noisy = logits - torch.log(-torch.log(u))  # Gumbel-max sampling, no host sync
    best, partner = noisy.max(1)
    neg = (torch.rand(b, device=ids.device, generator=generator) < fraction) & torch.isfinite(best)
    return partner, neg


class FlavaPretraining(nn.Module):
    """Model + frozen codebook + loss weights; ``forward(batch, kind)`` returns named losses."""

    def __init__(self, model: FlavaModel, codebook: nn.Module, weights: LossConfig) -> None:
        super().__init__()
        self.model, self.codebook, self.w = model, codebook, weights
        for p in self.codebook.parameters():
            p.requires_grad_(False)

    def codes(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "codes" in batch:
            return batch["codes"]
        with torch.autocast(device_type=batch["images"].device.type, enabled=False):
            return self.codebook(batch["images"])

    def forward(self, batch: dict[str, torch.Tensor], kind: str = "paired") -> dict[str, torch.Tensor]:
        if kind == "paired":
            out = self._paired(batch)
        elif kind == "image":
            out = self._image(batch)
        elif kind == "text":
            out = self._text(batch)
        else:
            raise ValueError(f"unknown batch kind {kind!r}")
        weights = {"gc": self.w.gc, "itm": self.w.itm, "mmm_image": self.w.mmm_image,
                   "mmm_text": self.w.mmm_text, "mim": self.w.mim, "mlm": self.w.mlm}
        out["loss"] = sum(weights[k] * v for k, v in out.items() if k in weights and weights[k] != 0.0)
        return out

    def _image_labels(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        codes = self.codes(batch).gather(1, batch["patch_idx"])
        return torch.where(batch["patch_valid"], codes, torch.full_like(codes, -1))

    def _image(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m = self.model
        _, h = m.image(batch["images"], batch["patch_mask"], rows=1 + batch["patch_idx"])  # after [CLS]
        return {"mim": prediction_loss(m.mim_head, h, self._image_labels(batch))}

    def _text(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m = self.model
        _, h = m.text(batch["masked_ids"], batch["attn"], batch["mlm_pos"])
        return {"mlm": prediction_loss(m.mlm_head, h, batch["mlm_labels"])}

    def _paired(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m, w = self.model, self.w
        images, ids, attn = batch["images"], batch["ids"], batch["attn"]
        out: dict[str, torch.Tensor] = {}
        b = ids.shape[0]
        # Unmasked passes (contrastive) and masked passes (fusion input) stacked into one batch per tower; the
        # unmasked halves compute only their CLS row in the last layer, the only row GC reads.
        patches = m.image.patches(images)
        img_cls, img_pre = m.image.encoder.split_last(
            torch.cat([m.image.tokens(patches), m.image.tokens(patches, batch["patch_mask"])]), None, b)
        txt_cls, txt_pre = m.text.encoder.split_last(
            m.text.embed(torch.cat([ids, batch["masked_ids"]])), torch.cat([attn, attn]), b)
        img_emb = F.normalize(m.image_projection(img_cls).float(), dim=-1)
        txt_emb = F.normalize(m.text_projection(txt_cls).float(), dim=-1)
        sims = (img_emb @ txt_emb.T).detach() * m.clamped_scale().detach() if w.itm_negatives == "hard" else None
        partner, neg = choose_negatives(ids, w.itm_negative_fraction, sims)
        pos = ~neg
        # The unimodal pairs of ITM negatives are still true pairs here (the negative caption only enters the
        # multimodal pass), so every row stays in GC; FLAVA drops them because its text was replaced.
        out["gc"] = contrastive_loss(img_emb, txt_emb, m.clamped_scale())
        # Multimodal encoder on the masked passes; negatives take another row's (masked) caption. Its last layer
        # runs only at the rows the heads read: [CLS_M], the masked patches, the masked tokens.
        take = torch.where(neg, partner, torch.arange(b, device=ids.device))
        n_img, n_mim = img_pre.shape[1], batch["patch_idx"].shape[1]  # 1 + P, masked patch slots
        rows = torch.cat([torch.zeros_like(batch["patch_idx"][:, :1]), 2 + batch["patch_idx"],
                          1 + n_img + batch["mlm_pos"]], 1)
        mm = m.multimodal(img_pre, txt_pre[take], attn[take], rows)
        itm_logits = m.itm_head(mm[:, 0]).float()
        out["itm"] = F.cross_entropy(itm_logits, pos.long())
        img_labels = torch.where(pos[:, None], self._image_labels(batch), -1)
        out["mmm_image"] = prediction_loss(m.mmm_image_head, mm[:, 1:1 + n_mim], img_labels)
        txt_labels = torch.where(pos[:, None], batch["mlm_labels"], -1)
        out["mmm_text"] = prediction_loss(m.mmm_text_head, mm[:, 1 + n_mim:], txt_labels)
        out["itm_acc"] = ((itm_logits.argmax(1) == pos.long()).float().mean()).detach()
        out["logit_scale"] = m.logit_scale.detach()
        return out
