"""FLAVA model: ViT image encoder, text encoder of the same shape, multimodal encoder, heads.

Follows the paper and the public FLAVA description: pre-LN transformers, a conv patch embedding
(channels-last friendly), learned positions, a mask token for masked patches, BERT-style text
embeddings, and a multimodal encoder over projected image + text hidden states (taken before the
final LayerNorm) with its own ``[CLS_M]`` token that masks padded text.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pmd.training.attention import Encoder, Linear, cls_rows
from pmd.training.config import ModelConfig

# CLIP image statistics (FLAVA uses them); images reach the model as uint8 or [0, 1] floats.
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B,3,H,W) → float in [0, 1]; float input is returned as is."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images


class ImageEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        e = cfg.image
        if cfg.image_size % cfg.patch_size:
            raise ValueError("image_size must be a multiple of patch_size")
        self.grid = cfg.image_size // cfg.patch_size
        self.num_patches = self.grid * self.grid
        self.patch = nn.Conv2d(3, e.width, cfg.patch_size, stride=cfg.patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, e.width))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, e.width))
        self.pos = nn.Parameter(torch.zeros(1, 1 + self.num_patches, e.width))
        self.encoder = Encoder(e.width, e.layers, e.heads, e.mlp_ratio, cfg.layer_norm_eps)
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)

    def patches(self, images: torch.Tensor) -> torch.Tensor:
        """images (B,3,H,W) uint8 or [0,1] → patch embeddings (B,P,D) (shared by a step's masked and unmasked passes)."""
        x = (to_unit_float(images) - self.mean) / self.std
        return self.patch(x.contiguous(memory_format=torch.channels_last)).flatten(2).transpose(1, 2)

    def tokens(self, patches: torch.Tensor, patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[CLS] ; patches`` + positions; patch_mask (B,P) True replaces a patch by the mask token."""
        if patch_mask is not None:
            patches = torch.where(patch_mask[..., None], self.mask_token.to(patches.dtype), patches)
        return torch.cat([self.cls.expand(patches.shape[0], -1, -1).to(patches.dtype), patches], dim=1) + self.pos

    def forward(self, images: torch.Tensor, patch_mask: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """patch_mask (B,P) True = masked. Returns (pre-LN, post-LN) of every token, or of ``rows`` (B,R) only."""
        return self.encoder(self.tokens(self.patches(images), patch_mask), rows=rows)


class TextEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        e = cfg.text
        self.tokens = nn.Embedding(cfg.vocab_size, e.width)
        self.pos = nn.Parameter(torch.zeros(1, cfg.max_text_len, e.width))
        self.ln_emb = nn.LayerNorm(e.width, eps=cfg.layer_norm_eps)
        self.encoder = Encoder(e.width, e.layers, e.heads, e.mlp_ratio, cfg.layer_norm_eps)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.ln_emb(self.tokens(ids) + self.pos[:, : ids.shape[1]])

    def forward(self, ids: torch.Tensor, attn: torch.Tensor,
                rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B,L) with [CLS] first; attn (B,L) True for real tokens. Returns (pre-LN, post-LN) of every token, or
        of ``rows`` (B,R) only."""
        return self.encoder(self.embed(ids), attn, rows)


class MultimodalEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        e = cfg.multimodal
        self.image_in = Linear(cfg.image.width, e.width)
        self.text_in = Linear(cfg.text.width, e.width)
        self.cls = nn.Parameter(torch.zeros(1, 1, e.width))
        self.encoder = Encoder(e.width, e.layers, e.heads, e.mlp_ratio, cfg.layer_norm_eps)

    def forward(self, image_h: torch.Tensor, text_h: torch.Tensor, text_attn: torch.Tensor,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """Sequence ``[CLS_M] ; image (1+P) ; text (L)``; padded text is masked out of attention. Returns the
        post-LN states of every position, or of ``rows`` (B,R) only (what the ITM and MMM heads read)."""
        b = image_h.shape[0]
        x = torch.cat([self.cls.expand(b, -1, -1).to(image_h.dtype), self.image_in(image_h), self.text_in(text_h)], 1)
        ones = torch.ones(b, 1 + image_h.shape[1], dtype=torch.bool, device=x.device)
        return self.encoder(x, torch.cat([ones, text_attn], 1), rows)[1]


class MaskedPredictionHead(nn.Module):
    """dense → GELU → LN → decoder, applied only at the masked positions (the encoders compute only those rows)."""

    def __init__(self, width: int, vocab: int, eps: float) -> None:
        super().__init__()
        self.dense = Linear(width, width)
        self.ln = nn.LayerNorm(width, eps=eps)
        self.decoder = Linear(width, vocab)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.ln(F.gelu(self.dense(h))))


class ITMHead(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.pool = Linear(width, width)
        self.cls = Linear(width, 2)

    def forward(self, cls_m: torch.Tensor) -> torch.Tensor:
        return self.cls(torch.tanh(self.pool(cls_m)))


class FlavaModel(nn.Module):
    def __init__(self, cfg: ModelConfig, image_codes: int) -> None:
        super().__init__()
        self.cfg = cfg
        eps = cfg.layer_norm_eps
        self.image = ImageEncoder(cfg)
        self.text = TextEncoder(cfg)
        self.multimodal = MultimodalEncoder(cfg)
        self.image_projection = Linear(cfg.image.width, cfg.embed_dim)
        self.text_projection = Linear(cfg.text.width, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(cfg.logit_scale_init)))
        self.mim_head = MaskedPredictionHead(cfg.image.width, image_codes, eps)
        self.mlm_head = MaskedPredictionHead(cfg.text.width, cfg.vocab_size, eps)
        self.mmm_image_head = MaskedPredictionHead(cfg.multimodal.width, image_codes, eps)
        self.mmm_text_head = MaskedPredictionHead(cfg.multimodal.width, cfg.vocab_size, eps)
        self.itm_head = ITMHead(cfg.multimodal.width)
        self.apply(self._init)
        for p in (self.image.cls, self.image.pos, self.image.mask_token, self.text.pos, self.multimodal.cls):
            nn.init.normal_(p, std=cfg.init_std)

    def _init(self, m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding)):
            nn.init.normal_(m.weight, std=self.cfg.init_std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def embed_image(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised contrastive embedding from the unmasked image CLS."""
        return F.normalize(self.image_projection(self.image(images, rows=cls_rows(images))[1][:, 0]).float(), dim=-1)

    def embed_text(self, ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_projection(self.text(ids, attn, cls_rows(ids))[1][:, 0]).float(), dim=-1)

    def clamped_scale(self) -> torch.Tensor:
        """exp(logit scale) with the scale clamped to [0, ln 100] (differentiable inside the range)."""
        return self.logit_scale.clamp(0.0, self.cfg.logit_scale_max).exp()
