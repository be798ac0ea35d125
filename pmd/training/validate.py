"""`pmd train --validate BUILD`: does a build teach image-text alignment? An end-to-end check.

Holds out a shard (or, for one-shard builds, a hash-chosen fifth of the images), trains the
configured model on the rest twice — once on the build as is, once with captions shuffled across
samples (the control, which defines chance empirically) — and measures on the held-out pairs:

* image→text and text→image recall@1/5/10 against chance (hypergeometric: a query with c relevant
  items among N has chance 1 − C(N−c, k)/C(N, k), ≈ k/N for c = 1; identical captions count as hits),
* the held-out contrastive (GC) loss against ln(batch) (its value at chance),
* balanced ITM accuracy and ITM AUROC on held-out pairs (50 % true, 50 % captions of other images).

PASS ("clearly beats the control") requires, for both directions, with k = ``recall_k``,
``aligned R@k ≥ chance_factor × chance R@k`` and ``aligned R@k ≥ control R@k + margin``
(defaults R@10, 2× and +0.15; with ~150 held-out queries the standard error of a recall difference
is ≈ 0.04, so +0.15 is ≈ 3.5 standard errors). Training losses are not evidence (captions are
learnable as text alone), hence held-out only. ITM is reported (balanced accuracy and AUROC), not
used in the verdict: from scratch it learns the label prior first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pmd.config import to_dict
from pmd.errors import UserError
from pmd.training.codebook import build_codebook
from pmd.training.config import TrainConfig
from pmd.training.data import Collator, InMemoryPairs, batch_kinds, iter_shard, open_build, train_tokenizer
from pmd.training.losses import contrastive_loss
from pmd.training.trainer import Trainer

log = logging.getLogger(__name__)

Sample = tuple[str, bytes, str]


def split_build(build_dir: str | Path, holdout_shards: int = 1, min_holdout: int = 64) -> tuple[list[Sample], list[Sample], str]:
    """(train samples, held-out samples, how). Images in the held-out set never appear in training."""
    build = open_build(build_dir)
    per_shard = [list(iter_shard(p)) for p in build.shards]
    all_samples = [s for shard in per_shard for s in shard]
    if len(all_samples) < 2 * min_holdout:
        raise UserError(f"{build_dir}: {len(all_samples)} pairs are too few to validate (need ≥ {2 * min_holdout})")
    held = [s for shard in per_shard[len(per_shard) - holdout_shards:] for s in shard] if len(per_shard) > holdout_shards else []
    if len(held) >= min_holdout and len(all_samples) - len(held) >= 2 * len(held):
        how = f"held out the last {holdout_shards} of {len(per_shard)} shards"
    else:
        groups = sorted({_image_hash(s) for s in all_samples})
        want = max(min_holdout, len(all_samples) // 5)
        chosen: set[str] = set()
        by_group: dict[str, int] = {}
        for s in all_samples:
            by_group[_image_hash(s)] = by_group.get(_image_hash(s), 0) + 1
        n = 0
        for g in sorted(groups, key=lambda g: hashlib.sha256(("holdout" + g).encode()).hexdigest()):
            if n >= want:
                break
            chosen.add(g)
            n += by_group[g]
        held = [s for s in all_samples if _image_hash(s) in chosen]
        how = f"held out {len(chosen)} images chosen by hash ({len(per_shard)} shard(s): too few to hold out a whole shard)"
    held_groups = {_image_hash(s) for s in held}
    held_keys = {s[0] for s in held}
    train = [s for s in all_samples if s[0] not in held_keys and _image_hash(s) not in held_groups]
    return train, held, how


def _image_hash(s: Sample) -> str:
    return hashlib.sha256(s[1]).hexdigest()


def chance_recall(n: int, relevant: np.ndarray, k: int) -> float:
    """Mean over queries of P(at least one of ``relevant`` items in k random picks of n)."""
    out = []
    for c in relevant:
        p_miss = 1.0
        for j in range(min(k, n)):
            p_miss *= max(0.0, (n - c - j) / (n - j))
        out.append(1.0 - p_miss)
    return float(np.mean(out))


def chance_median_rank(n: int, relevant: np.ndarray) -> float:
    """Median over queries of the rank of the first relevant item in a random order of n items (for
    one relevant item ≈ n/2; for an image with 5 captions among n, ≈ n/7)."""
    medians = []
    for c in relevant:
        p_miss, k = 1.0, 0
        while k < n and p_miss > 0.5:  # P(first hit > k) = C(n-c, k) / C(n, k)
            p_miss *= max(0.0, (n - c - k) / (n - k))
            k += 1
        medians.append(k)
    return float(np.median(medians))


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties count half."""
    if not len(pos) or not len(neg):
        return float("nan")
    both = np.concatenate([pos, neg])
    order = both.argsort(kind="stable")
    ranks = np.empty(len(both))
    ranks[order] = np.arange(1, len(both) + 1)
    for v in np.unique(both):  # average ranks of ties
        tie = both == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@torch.no_grad()
def evaluate(trainer: Trainer, held: InMemoryPairs, collator: Collator, batch: int, seed: int) -> dict[str, Any]:
    """Retrieval, held-out GC loss and balanced ITM accuracy on ``held`` (see the module doc)."""
    model, dev = trainer.model, trainer.device
    model.eval()
    groups: dict[str, int] = {}
    img_of_sample = np.array([groups.setdefault(hashlib.sha256(held.images[i].tobytes()).hexdigest(), len(groups))
                              for i in range(len(held))])
    first = {g: i for i, g in reversed(list(enumerate(img_of_sample)))}
    gi = [first[g] for g in range(len(groups))]
    texts: dict[str, int] = {}
    txt_of_sample = np.array([texts.setdefault(c.strip().lower(), len(texts)) for c in held.captions])
    ti = [int(np.flatnonzero(txt_of_sample == t)[0]) for t in range(len(texts))]
    rel = np.zeros((len(groups), len(texts)), dtype=bool)
    rel[img_of_sample, txt_of_sample] = True

    def embed_images(idx: list[int]) -> torch.Tensor:
        return torch.cat([model.embed_image(torch.as_tensor(held.images[idx[i:i + batch]]).to(dev))
                          for i in range(0, len(idx), batch)])

    def embed_texts(idx: list[int]) -> torch.Tensor:
        return torch.cat([model.embed_text(torch.as_tensor(held.ids[idx[i:i + batch]]).to(dev),
                                           torch.as_tensor(held.attn[idx[i:i + batch]]).to(dev))
                          for i in range(0, len(idx), batch)])

    ie, te = embed_images(gi), embed_texts(ti)
    sims = (ie @ te.T).cpu().numpy()
    out: dict[str, Any] = {"images": len(groups), "texts": len(texts), "pairs": len(held)}
    for name, s, r in (("i2t", sims, rel), ("t2i", sims.T, rel.T)):
        order = np.argsort(-s, axis=1, kind="stable")
        hits = np.take_along_axis(r, order, axis=1)
        first_hit = hits.argmax(1)
        for k in (1, 5, 10):
            out[f"{name}_r@{k}"] = float((first_hit < k).mean())
            out[f"{name}_chance@{k}"] = chance_recall(r.shape[1], r.sum(1), k)
        out[f"{name}_median_rank"] = float(np.median(first_hit + 1))
        out[f"{name}_chance_median_rank"] = chance_median_rank(r.shape[1], r.sum(1))
    # Held-out contrastive loss on batches of the training batch size vs ln(batch).
    b = min(trainer.cfg.data.batch_size, len(held))
    perm = np.random.default_rng(seed).permutation(len(held))
    losses = []
    scale = model.clamped_scale()
    for lo in range(0, len(held) - b + 1, b):
        sel = perm[lo:lo + b]
        img = model.embed_image(torch.as_tensor(held.images[sel]).to(dev))
        txt = model.embed_text(torch.as_tensor(held.ids[sel]).to(dev), torch.as_tensor(held.attn[sel]).to(dev))
        losses.append(float(contrastive_loss(img, txt, scale)))
    out["gc_loss"], out["gc_batch"], out["gc_chance"] = float(np.mean(losses)), b, math.log(b)
    # Balanced ITM accuracy: every pair once as is, once with a caption of another image.
    rng = np.random.default_rng(seed + 1)
    shift = rng.permutation(len(held))
    neg_txt = np.roll(shift, 1)[np.argsort(shift)]  # a derangement of the samples
    ok = ~rel[img_of_sample, txt_of_sample[neg_txt]]
    preds_pos, preds_neg = [], []
    for lo in range(0, len(held), batch):
        sel = np.arange(lo, min(lo + batch, len(held)))
        img = torch.as_tensor(held.images[sel]).to(dev)
        ih = model.image(img)[0]
        for txt_idx, sink in ((sel, preds_pos), (neg_txt[sel], preds_neg)):
            ids, attn = torch.as_tensor(held.ids[txt_idx]).to(dev), torch.as_tensor(held.attn[txt_idx]).to(dev)
            mm = model.multimodal(ih, model.text(ids, attn)[0], attn)
            logits = model.itm_head(mm[:, 0]).float()
            sink.append((logits[:, 1] - logits[:, 0]).cpu().numpy())  # log-odds of "matches"
    pos_score, neg_score = np.concatenate(preds_pos), np.concatenate(preds_neg)[ok]
    tpr = float((pos_score > 0).mean())
    tnr = float((neg_score <= 0).mean()) if ok.any() else float("nan")
    out["itm_tpr"], out["itm_tnr"], out["itm_balanced_acc"] = tpr, tnr, 0.5 * (tpr + tnr)
    out["itm_auroc"] = auroc(pos_score, neg_score)
    return out


def train_and_evaluate(cfg: TrainConfig, train: InMemoryPairs, held: InMemoryPairs, collator: Collator,
                       codebook_images: np.ndarray) -> dict[str, Any]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    codebook = build_codebook(cfg.codebook, cfg.model, (torch.as_tensor(codebook_images[i:i + 256])
                                                        for i in range(0, len(codebook_images), 256)))
    trainer = Trainer(cfg, codebook)
    d = cfg.data
    kinds = batch_kinds({"paired": d.paired_weight, "image": d.image_weight, "text": d.text_weight}, d.mix, cfg.seed)
    t0 = time.monotonic()
    rows = trainer.fit(train.batches(collator, d.batch_size, kinds, cfg.seed), cfg.steps)
    metrics = evaluate(trainer, held, collator, cfg.validate.eval_batch, cfg.seed)
    metrics["train_seconds"] = time.monotonic() - t0
    metrics["train_log"] = rows
    return metrics


def verdict(aligned: dict[str, Any], control: dict[str, Any], cfg: TrainConfig) -> tuple[bool, list[str]]:
    """PASS iff, in both directions, aligned R@k ≥ factor x chance and ≥ control + margin."""
    v = cfg.validate
    k = v.recall_k
    reasons, ok = [], True
    for d in ("i2t", "t2i"):
        a, c, ch = aligned[f"{d}_r@{k}"], control[f"{d}_r@{k}"], aligned[f"{d}_chance@{k}"]
        good = a >= v.chance_factor * ch and a >= c + v.margin
        ok &= good
        reasons.append(f"{d} R@{k} {a:.3f} vs chance {ch:.3f} (need ≥ {v.chance_factor:g}x = "
                       f"{v.chance_factor * ch:.3f}) and control {c:.3f} (need ≥ {c + v.margin:.3f}): "
                       f"{'ok' if good else 'FAIL'}")
    return ok, reasons


def validate_build(build_dir: str | Path, cfg: TrainConfig, out_dir: str | Path) -> dict[str, Any]:
    """Run the aligned and the shuffled-caption runs; write ``report.json`` and ``report.md``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v = cfg.validate
    train_s, held_s, how = split_build(build_dir, v.holdout_shards, v.min_holdout)
    log.info("validate %s: %d train / %d held-out pairs (%s)", build_dir, len(train_s), len(held_s), how)
    if cfg.data.tokenizer:
        from pmd.training.data import load_tokenizer_file
        tok = load_tokenizer_file(cfg.data.tokenizer, cfg.model.max_text_len)
    else:
        tok = train_tokenizer([t for _, _, t in train_s], cfg.model.vocab_size, cfg.model.max_text_len)
    collator = Collator(cfg.model, cfg.masking, tok)
    train = InMemoryPairs.from_samples(train_s, cfg.model.image_size, collator, cfg.data.fit)
    held = InMemoryPairs.from_samples(held_s, cfg.model.image_size, collator, cfg.data.fit)
    if len(train) < cfg.data.batch_size:
        raise UserError(f"{len(train)} training pairs are fewer than one batch ({cfg.data.batch_size})")
    aligned = train_and_evaluate(cfg, train, held, collator, train.images)
    control = train_and_evaluate(cfg, train.with_captions_permuted(cfg.seed + 99), held, collator, train.images)
    ok, reasons = verdict(aligned, control, cfg)
    report = {"pass": bool(ok), "build": str(build_dir), "split": how, "train_pairs": len(train),
              "holdout_pairs": len(held), "criterion": {"recall_k": v.recall_k, "chance_factor": v.chance_factor, "margin": v.margin,
                                                        "rule": f"both directions: aligned R@{v.recall_k} >= factor x chance "
                                                                f"and >= control R@{v.recall_k} + margin"},
              "reasons": reasons, "aligned": aligned, "control": control, "config": to_dict(cfg)}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(render_markdown(report))
    return report


def render_markdown(r: dict[str, Any]) -> str:
    a, c = r["aligned"], r["control"]
    lines = [f"# Build validation: {'PASS' if r['pass'] else 'FAIL'}", "",
             f"Build `{r['build']}`: {r['train_pairs']} training pairs, {r['holdout_pairs']} held-out pairs "
             f"({r['split']}); config `{r['config']['name']}`, {r['config']['steps']} steps, seed {r['config']['seed']}.",
             "", "Control: the same run with captions shuffled across the training samples.", "",
             "| held-out metric | aligned | shuffled control | chance |", "| --- | --- | --- | --- |"]
    for d, name in (("i2t", "image→text"), ("t2i", "text→image")):
        for k in (1, 5, 10):
            lines.append(f"| {name} R@{k} | {a[f'{d}_r@{k}']:.3f} | {c[f'{d}_r@{k}']:.3f} | {a[f'{d}_chance@{k}']:.3f} |")
        lines.append(f"| {name} median rank | {a[f'{d}_median_rank']:.0f} | {c[f'{d}_median_rank']:.0f} | "
                     f"{a[f'{d}_chance_median_rank']:.0f} |")
    lines += [f"| GC loss (batch {a['gc_batch']}) | {a['gc_loss']:.3f} | {c['gc_loss']:.3f} | ln {a['gc_batch']} = {a['gc_chance']:.3f} |",
              f"| ITM balanced accuracy | {a['itm_balanced_acc']:.3f} | {c['itm_balanced_acc']:.3f} | 0.500 |",
              f"| ITM AUROC | {a['itm_auroc']:.3f} | {c['itm_auroc']:.3f} | 0.500 |", "",
              f"Held-out gallery: {a['images']} distinct images, {a['texts']} distinct captions.", "",
              "## Verdict", "", f"PASS needs, in both directions, aligned R@{r['criterion']['recall_k']} ≥ "
              f"{r['criterion']['chance_factor']:g}× chance and ≥ control R@{r['criterion']['recall_k']} + "
              f"{r['criterion']['margin']:g}.", ""]
    lines += [f"- {x}" for x in r["reasons"]]
    return "\n".join(lines) + "\n"
