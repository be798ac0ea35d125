"""Per-pair alignment scores from a trained checkpoint (`pmd score`), and their summary for `pmd stats`.

For every pair of a build: ``score`` = cosine similarity of the contrastive image and text embeddings
(CLIP-score style: what DataComp's strongest baseline filters on) and ``itm_prob`` = the ITM head's
probability that the caption matches the image. Images get the model's evaluation transform (the config's
``fit``, no random crop); shards are read through ``pmd.loaders`` in order. The checkpoint is loaded as
data (``weights_only=True``) and must be a ``pmd train`` checkpoint whose weights fit the architecture its
config describes; anything else is one clear error.
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

SCHEMA = pa.schema([("key", pa.string()), ("score", pa.float32()), ("itm_prob", pa.float32()),
                    ("source", pa.string()), ("shard", pa.string())])


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
def score_pairs(model: FlavaModel, images: torch.Tensor, ids: torch.Tensor, attn: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(cosine similarity, ITM match probability) of each (image, caption) row."""
    ih_pre, ih_post = model.image(images)
    th_pre, th_post = model.text(ids, attn)
    ie = torch.nn.functional.normalize(model.image_projection(ih_post[:, 0]).float(), dim=-1)
    te = torch.nn.functional.normalize(model.text_projection(th_post[:, 0]).float(), dim=-1)
    logits = model.itm_head(model.multimodal(ih_pre, th_pre, attn)[:, 0]).float()
    return (ie * te).sum(-1).cpu().numpy(), torch.softmax(logits, -1)[:, 1].cpu().numpy()


def score_build(build_dir: str | Path, checkpoint: str | Path, out: str | Path, batch: int = 256,
                device: str = "auto", workers: int = 0) -> dict[str, Any]:
    """Write ``out`` (Parquet: key, score, itm_prob, source, shard), one row per readable pair."""
    from pmd.loaders import TextEncoder, collate
    from pmd.training.trainer import pick_device

    dev = pick_device(device)
    model, cfg, tok = load_scorer(checkpoint, dev)
    build = open_build(build_dir, verify="size")
    decoder = TrainDecoder(TextEncoder(tok, cfg.model.max_text_len), cfg.model.image_size, cfg.data.fit)
    stream = pair_stream(str(build.root), decoder, shuffle=False)
    loader = torch.utils.data.DataLoader(stream, batch_size=batch, collate_fn=collate, num_workers=workers)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    with pq.ParquetWriter(tmp, SCHEMA) as w:
        for b in loader:
            s, p = score_pairs(model, b["image"].to(dev), b["input_ids"].to(dev), b["attention_mask"].bool().to(dev))
            w.write_table(pa.table({"key": b["key"], "score": s.astype(np.float32), "itm_prob": p.astype(np.float32),
                                    "source": b["source"], "shard": b["shard"]}, schema=SCHEMA))
            n += len(s)
    tmp.replace(out)
    return {"out": str(out), "pairs": n, "skipped": stream.errors.total, "expected": sum(build.samples)}


def score_summary(path: str | Path) -> dict[str, Any]:
    """Distribution of a scores file: overall and per source (count, mean, quantiles) and a histogram."""
    t = pq.read_table(path)
    if not {"key", "score", "itm_prob"} <= set(t.column_names):
        raise UserError(f"{path}: not a `pmd score` file (needs key, score, itm_prob)")
    score = np.asarray(t.column("score").to_numpy(), dtype=float)
    itm = np.asarray(t.column("itm_prob").to_numpy(), dtype=float)

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
    return {"pairs": int(len(score)), "score": stats(score), "itm_prob": stats(itm), "per_source": per,
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

    lines += [row("score (all)", summary["score"]), row("itm_prob (all)", summary["itm_prob"])]
    for src, s in summary["per_source"].items():
        lines.append(row(f"score {src}"[:28], s["score"]))
    h = summary["histogram"]
    peak = max(h["counts"]) or 1
    lines += ["", "score histogram:"]
    for c, lo, hi in zip(h["counts"], h["edges"], h["edges"][1:]):
        lines.append(f"  [{lo:+.3f}, {hi:+.3f})  {c:7d}  {'#' * round(40 * c / peak)}")
    return "\n".join(lines)
