"""Per-pair alignment scores from a trained checkpoint (`pmd score`), and their summary for `pmd stats`.

For every pair of a build: ``cosine`` = cosine similarity of the contrastive image and text embeddings
(CLIP-score style: what DataComp's strongest baseline filters on); ``score`` = that similarity corrected for
hubness, CSLS (Conneau et al. 2018, "Word translation without parallel data"): ``2·cos(i, t) − r(i) − r(t)``,
where ``r(i)`` is the mean similarity of image ``i`` to its ``k`` nearest captions and ``r(t)`` that of caption
``t`` to its ``k`` nearest images in a reference sample of the same build (the pair itself left out); and
``itm_prob`` = the ITM head's probability that the caption matches the image. Why CSLS: raw cosine mixes the
pair's alignment with per-item offsets (a generic caption or a plain image is close to everything, a long
templated caption to nothing), so a global threshold on it drops well-aligned pairs of some caption styles
and keeps misaligned ones of others; subtracting each side's neighbourhood level leaves how much better this
caption fits this image than its neighbours do. Measured on the embedded sample with 10 % of captions swapped
(the `pmd score` acceptance, tiny, 150 steps): swap AUROC 0.812 → 0.828, 0.755 → 0.771, 0.764 → 0.800 for
three swap/training seeds (cosine → CSLS), and higher on every other tiny variant tried but one. ``score`` is relative to the build (its reference sample), so compare it within a build; ``cosine``
is comparable across builds of one checkpoint.

The reference sample is whole shards spread evenly over the build, up to ``reference`` pairs (bounded memory:
two ``reference × embed_dim`` matrices; one extra forward pass over those pairs). Images get the model's
evaluation transform (the config's ``fit``, no random crop); shards are read through ``pmd.loaders`` in
order. The checkpoint is loaded as data (``weights_only=True``) and must be a ``pmd train`` checkpoint whose
weights fit the architecture its config describes; anything else is one clear error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pmd.config import ConfigError, from_dict
from pmd.errors import UserError
from pmd.training.checkpoint import read_checkpoint
from pmd.training.config import TrainConfig
from pmd.training.data import TrainDecoder, open_build, pair_stream
from pmd.training.model import FlavaModel

log = logging.getLogger(__name__)

SCHEMA = pa.schema([("key", pa.string()), ("score", pa.float32()), ("cosine", pa.float32()),
                    ("itm_prob", pa.float32()), ("source", pa.string()), ("shard", pa.string())])
CSLS_K = 10  # neighbours per side: the CSLS paper's k
REFERENCE_PAIRS = 4096  # reference sample size: on the sample build 512 pairs already gave the whole build's AUROC


def load_scorer(checkpoint: str | Path, device: torch.device):
    """(model in eval mode, config, tokenizer) from a ``pmd train`` checkpoint; ``UserError`` otherwise."""
    from tokenizers import Tokenizer

    state = read_checkpoint(checkpoint)
    try:
        cfg = from_dict(TrainConfig, state["config"])
    except (KeyError, ConfigError, TypeError, ValueError) as e:
        raise UserError(f"{checkpoint}: its config is not a trainer config this pmd understands ({e})") from None
    codes = cfg.codebook.codes
    model = FlavaModel(cfg.model, codes)
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise UserError(f"{checkpoint}: no model weights")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise UserError(f"{checkpoint}: the weights are not this FLAVA architecture ({detail[:200]})") from None
    if "tokenizer" in state:
        tok = Tokenizer.from_str(state["tokenizer"])
    elif (Path(checkpoint).parent / "tokenizer.json").is_file():
        tok = Tokenizer.from_file(str(Path(checkpoint).parent / "tokenizer.json"))
    else:
        raise UserError(f"{checkpoint}: no tokenizer in the checkpoint and no tokenizer.json beside it")
    return model.to(device).eval(), cfg, tok


@torch.no_grad()
def embed_pairs(model: FlavaModel, images: torch.Tensor, ids: torch.Tensor,
                attn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(unit image embeddings, unit text embeddings, ITM match probability) of each (image, caption) row."""
    ih_pre, ih_post = model.image(images)
    th_pre, th_post = model.text(ids, attn)
    ie = torch.nn.functional.normalize(model.image_projection(ih_post[:, 0]).float(), dim=-1)
    te = torch.nn.functional.normalize(model.text_projection(th_post[:, 0]).float(), dim=-1)
    logits = model.itm_head(model.multimodal(ih_pre, th_pre, attn)[:, 0]).float()
    return ie, te, torch.softmax(logits, -1)[:, 1]


def reference_shards(shards: list[Path], samples: list[int], pairs: int) -> list[Path]:
    """Whole shards spread evenly over the build until they hold ``pairs`` (all of a smaller build): a sample
    of every part of the build (sources are often grouped by shard) that is read without decoding the rest."""
    total = sum(samples)
    if total <= pairs or len(shards) <= 1:
        return list(shards)
    n = len(shards)
    want = min(n, max(1, -(-pairs * n // total)))
    while True:
        picked = sorted({int((j + 0.5) * n / want) for j in range(want)})
        if want == n or sum(samples[i] for i in picked) >= pairs:
            break
        want = min(n, 2 * want)  # uneven shards: spread more of them
    return [shards[i] for i in picked]


class Reference:
    """Embeddings of the reference sample, and each item's neighbourhood level against it (the CSLS terms)."""

    def __init__(self, keys: list[str], image: torch.Tensor, text: torch.Tensor, k: int = CSLS_K) -> None:
        self.index = {key: n for n, key in enumerate(keys)}
        self.image, self.text = image, text
        self.k = min(k, len(keys) - 1)  # a reference pair leaves itself out, so at most len - 1 neighbours

    def levels(self, keys: list[str], ie: torch.Tensor, te: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean similarity of each image to its k nearest reference captions, of each caption to its k nearest
        reference images); the pair's own entry, when it is in the reference, does not count."""
        if self.k < 1:
            zero = torch.zeros(len(keys), device=ie.device)
            return zero, zero
        to_text, to_image = ie @ self.text.T, te @ self.image.T
        rows = [(r, self.index[key]) for r, key in enumerate(keys) if key in self.index]
        if rows:
            r, c = (torch.tensor(x, device=ie.device) for x in zip(*rows))
            to_text[r, c] = float("-inf")
            to_image[r, c] = float("-inf")
        return to_text.topk(self.k, 1).values.mean(1), to_image.topk(self.k, 1).values.mean(1)


def _batches(model: FlavaModel, urls: str | list[str], decoder: TrainDecoder, batch: int, workers: int,
             dev: torch.device, stream_errors: list | None = None):
    """(batch dict, image emb, text emb, ITM prob) for every batch of ``urls``, in shard order."""
    from pmd.loaders import collate

    stream = pair_stream(urls, decoder, shuffle=False)
    if stream_errors is not None:
        stream_errors.append(stream.errors)
    loader = torch.utils.data.DataLoader(stream, batch_size=batch, collate_fn=collate, num_workers=workers)
    for b in loader:
        yield (b, *embed_pairs(model, b["image"].to(dev), b["input_ids"].to(dev), b["attention_mask"].bool().to(dev)))


def build_reference(model: FlavaModel, shards: list[Path], decoder: TrainDecoder, pairs: int, batch: int,
                    workers: int, dev: torch.device) -> Reference:
    """Embed up to ``pairs`` pairs of ``shards`` (the reference sample)."""
    keys: list[str] = []
    ims, txs = [], []
    for b, ie, te, _ in _batches(model, [str(s) for s in shards], decoder, batch, workers, dev):
        take = min(len(ie), pairs - len(keys))
        keys += list(b["key"][:take])
        ims.append(ie[:take])
        txs.append(te[:take])
        if len(keys) >= pairs:
            break
    dim = model.cfg.embed_dim
    cat = (lambda xs: torch.cat(xs) if xs else torch.zeros(0, dim, device=dev))
    return Reference(keys, cat(ims), cat(txs))


def score_build(build_dir: str | Path, checkpoint: str | Path, out: str | Path, batch: int = 256,
                device: str = "auto", workers: int = 0, reference: int = REFERENCE_PAIRS) -> dict[str, Any]:
    """Write ``out`` (Parquet: key, score, cosine, itm_prob, source, shard), one row per readable pair."""
    from pmd.loaders import TextEncoder
    from pmd.training.trainer import pick_device

    if reference < 1:
        raise UserError(f"the reference sample needs at least one pair, got {reference}")
    dev = pick_device(device)
    model, cfg, tok = load_scorer(checkpoint, dev)
    build = open_build(build_dir, verify="size")
    decoder = TrainDecoder(TextEncoder(tok, cfg.model.max_text_len), cfg.model.image_size, cfg.data.fit)
    ref = build_reference(model, reference_shards(build.shards, build.samples, reference), decoder, reference,
                          batch, workers, dev)
    log.info("CSLS reference: %d pairs, k=%d", len(ref.index), ref.k)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    errors: list = []
    with pq.ParquetWriter(tmp, SCHEMA) as w:
        for b, ie, te, p in _batches(model, str(build.root), decoder, batch, workers, dev, errors):
            cos = (ie * te).sum(-1)
            r_img, r_txt = ref.levels(list(b["key"]), ie, te)
            csls = 2 * cos - r_img - r_txt
            w.write_table(pa.table({"key": b["key"], "score": csls.cpu().numpy().astype(np.float32),
                                    "cosine": cos.cpu().numpy().astype(np.float32),
                                    "itm_prob": p.cpu().numpy().astype(np.float32),
                                    "source": b["source"], "shard": b["shard"]}, schema=SCHEMA))
            n += len(cos)
    tmp.replace(out)
    return {"out": str(out), "pairs": n, "skipped": errors[0].total, "expected": sum(build.samples),
            "reference_pairs": len(ref.index), "csls_k": ref.k}


def score_summary(path: str | Path) -> dict[str, Any]:
    """Distribution of a scores file: overall and per source (count, mean, quantiles) and a histogram."""
    t = pq.read_table(path)
    if not {"key", "score", "itm_prob"} <= set(t.column_names):
        raise UserError(f"{path}: not a `pmd score` file (needs key, score, itm_prob)")
    score = np.asarray(t.column("score").to_numpy(), dtype=float)
    itm = np.asarray(t.column("itm_prob").to_numpy(), dtype=float)
    cosine = np.asarray(t.column("cosine").to_numpy(), dtype=float) if "cosine" in t.column_names else None

    def stats(x: np.ndarray) -> dict[str, float]:
        if not len(x):
            return {"count": 0}
        q = np.quantile(x, [0.01, 0.1, 0.5, 0.9, 0.99])
        return {"count": int(len(x)), "mean": float(x.mean()), "p01": float(q[0]), "p10": float(q[1]),
                "p50": float(q[2]), "p90": float(q[3]), "p99": float(q[4])}

    sources = t.column("source").to_pylist() if "source" in t.column_names else ["all"] * len(score)
    per = {}
    for src in sorted(set(sources)):
        sel = np.array([s == src for s in sources])
        per[src] = {"score": stats(score[sel]), "itm_prob": stats(itm[sel])}
    lo, hi = (float(score.min()), float(score.max())) if len(score) else (0.0, 1.0)
    counts, edges = np.histogram(score, bins=10, range=(lo, hi if hi > lo else lo + 1e-6))
    extra = {"cosine": stats(cosine)} if cosine is not None else {}
    return {"pairs": int(len(score)), "score": stats(score), **extra, "itm_prob": stats(itm), "per_source": per,
            "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}}


def format_score_summary(summary: dict[str, Any]) -> str:
    """Plain-text table of ``score_summary`` (what `pmd stats --scores` prints)."""
    lines = [f"Alignment scores: {summary['pairs']:,} pairs", "",
             f"{'':28s} {'count':>7s} {'mean':>7s} {'p01':>7s} {'p10':>7s} {'p50':>7s} {'p90':>7s} {'p99':>7s}"]

    def row(name: str, s: dict[str, float]) -> str:
        if not s.get("count"):
            return f"{name:28s} {0:7d}"
        return (f"{name:28s} {s['count']:7d} {s['mean']:7.3f} {s['p01']:7.3f} {s['p10']:7.3f} {s['p50']:7.3f} "
                f"{s['p90']:7.3f} {s['p99']:7.3f}")

    lines += [row("score (all)", summary["score"])]
    if "cosine" in summary:
        lines.append(row("cosine (all)", summary["cosine"]))
    lines.append(row("itm_prob (all)", summary["itm_prob"]))
    for src, s in summary["per_source"].items():
        lines.append(row(f"score {src}"[:28], s["score"]))
    h = summary["histogram"]
    peak = max(h["counts"]) or 1
    lines += ["", "score histogram:"]
    for c, lo, hi in zip(h["counts"], h["edges"], h["edges"][1:]):
        lines.append(f"  [{lo:+.3f}, {hi:+.3f})  {c:7d}  {'#' * round(40 * c / peak)}")
    return "\n".join(lines)
