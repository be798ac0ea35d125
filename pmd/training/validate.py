"""`pmd train --validate BUILD`: does a build teach image-text alignment? An end-to-end check.

Holds out a shard (or, for one-shard builds, a hash-chosen fifth of the images), trains the
configured model on the rest twice — once on the build as is, once with captions shuffled across
samples (the control, which defines chance empirically) — and measures on the held-out pairs:

* image→text and text→image recall@1/5/10 against chance (hypergeometric: a query with c relevant
  items among N has chance 1 − C(N−c, k)/C(N, k), ≈ k/N for c = 1; identical captions count as hits),
* the held-out contrastive (GC) loss against ln(batch) (its value at chance),
* balanced ITM accuracy and ITM AUROC on held-out pairs (50 % true, 50 % captions of other images).

Verdicts, with k = ``recall_k`` and the criterion "aligned R@k ≥ chance_factor × chance R@k and
≥ control R@k + margin" (defaults R@10, 2x, +0.15; with ~150 held-out queries the standard error of a recall
difference is ≈ 0.04, so +0.15 is ≈ 3.5 standard errors):

* **PASS** — the run generalises (the criterion holds in both directions, or on the parts that hold most
  held-out pairs) and every judged part (each source; each shard when there is one source) meets it too.
* **FAIL** — it generalises, but some judged parts stay at chance or at the control's level: the report
  names them (``misaligned``).
* **INCONCLUSIVE** — no transferable alignment at all (aligned ≈ control ≈ chance): the report says why
  (the training losses tell "fitted the training pairs but did not transfer: too few / too hard pairs"
  from "fitted nothing: too hard for this budget, or misaligned throughout") and what would decide it.

A part is judged on its own queries (its images for image→text, its captions for text→image, searched in
the whole held-out gallery, both directions pooled) when it has ≥ ``min_part_queries`` of them. Training
losses are not evidence (captions are learnable as text alone), hence held-out only. ITM is reported
(balanced accuracy and AUROC), not used in the verdict: from scratch it learns the label prior first.
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
from pmd.training.data import (Collator, InMemoryPairs, batch_kinds, load_tokenizer_file, open_build, read_samples,
                               train_tokenizer)
from pmd.training.losses import contrastive_loss
from pmd.training.trainer import Trainer

log = logging.getLogger(__name__)

def split_build(build_dir: str | Path, cfg: TrainConfig, collator: Collator) -> tuple[InMemoryPairs, InMemoryPairs, str]:
    """(train pairs, held-out pairs, how), decoded once through ``pmd.loaders``. The last ``holdout_shards``
    shards are held out when that leaves enough pairs on both sides; otherwise images chosen by a hash of
    their bytes. Either way no held-out image (by content hash) appears in training."""
    v = cfg.validate
    build = open_build(build_dir, verify="sha256")  # one process, reads every byte anyway: verify once
    every = InMemoryPairs.from_decoded(
        read_samples(str(build.root), collator.encoder, cfg.model.image_size, cfg.data.fit), cfg.model.image_size)
    n = len(every)
    if n < 2 * v.min_holdout:
        raise UserError(f"{build_dir}: {n} pairs are too few to validate (need ≥ {2 * v.min_holdout})")
    names = [p.name for p in build.shards]
    held_shards = set(names[len(names) - v.holdout_shards:]) if len(names) > v.holdout_shards else set()
    held_idx = [i for i in range(n) if every.shards[i] in held_shards]
    if len(held_idx) >= v.min_holdout and n - len(held_idx) >= 2 * len(held_idx):
        how = f"held out the last {v.holdout_shards} of {len(names)} shards"
    else:
        by_group: dict[str, int] = {}
        for h in every.image_hashes:
            by_group[h] = by_group.get(h, 0) + 1
        want = max(v.min_holdout, n // 5)
        chosen: set[str] = set()
        count = 0
        for g in sorted(by_group, key=lambda g: hashlib.sha256(("holdout" + g).encode()).hexdigest()):
            if count >= want:
                break
            chosen.add(g)
            count += by_group[g]
        held_idx = [i for i in range(n) if every.image_hashes[i] in chosen]
        how = f"held out {len(chosen)} images chosen by hash ({len(names)} shard(s): too few to hold out a whole shard)"
    held_keys = {every.keys[i] for i in held_idx}
    held_groups = {every.image_hashes[i] for i in held_idx}
    train_idx = [i for i in range(n) if every.keys[i] not in held_keys and every.image_hashes[i] not in held_groups]
    return every.subset(train_idx), every.subset(held_idx), how


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


PART_KINDS = ("source", "shard")


def _part_of(held: InMemoryPairs, kind: str) -> list[str]:
    return held.sources if kind == "source" else held.shards


@torch.no_grad()
def evaluate(trainer: Trainer, held: InMemoryPairs, collator: Collator, batch: int, seed: int) -> dict[str, Any]:
    """Retrieval (overall and per source / per shard), held-out GC loss and balanced ITM accuracy on ``held``."""
    model, dev = trainer.model, trainer.device
    model.eval()
    groups: dict[str, int] = {}
    img_of_sample = np.array([groups.setdefault(held.image_hashes[i], len(groups)) for i in range(len(held))])
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
    first_hits: dict[str, np.ndarray] = {}
    for name, s, r in (("i2t", sims, rel), ("t2i", sims.T, rel.T)):
        order = np.argsort(-s, axis=1, kind="stable")
        hits = np.take_along_axis(r, order, axis=1)
        first_hit = hits.argmax(1)
        first_hits[name] = first_hit
        for k in (1, 5, 10):
            out[f"{name}_r@{k}"] = float((first_hit < k).mean())
            out[f"{name}_chance@{k}"] = chance_recall(r.shape[1], r.sum(1), k)
        out[f"{name}_median_rank"] = float(np.median(first_hit + 1))
        out[f"{name}_chance_median_rank"] = chance_median_rank(r.shape[1], r.sum(1))
    # Per source and per shard: the queries whose image (i2t) or caption (t2i) belongs to the part, searched
    # in the whole held-out gallery; both directions pooled (a part's recall and its chance).
    k = trainer.cfg.validate.recall_k
    out["parts"] = {}
    for kind in PART_KINDS:
        labels = _part_of(held, kind)
        q_label = {"i2t": [labels[i] for i in gi], "t2i": [labels[i] for i in ti]}
        table: dict[str, dict[str, float]] = {}
        for part in sorted(set(labels)):
            hit, chance, n_dir = [], [], {}
            for name, r in (("i2t", rel), ("t2i", rel.T)):
                sel = np.array([lab == part for lab in q_label[name]])
                n_dir[name] = int(sel.sum())
                if sel.any():
                    hit.append(first_hits[name][sel] < k)
                    chance += [chance_recall(r.shape[1], r[sel].sum(1), k) * sel.sum()]
            n = n_dir["i2t"] + n_dir["t2i"]
            table[part] = {"queries": n, "pairs": int(sum(lab == part for lab in labels)),
                           f"r@{k}": float(np.concatenate(hit).mean()) if n else float("nan"),
                           f"chance@{k}": float(sum(chance) / n) if n else float("nan")}
        out["parts"][kind] = table
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
    pos_score = itm_log_odds(model, held.images, held.ids, held.attn, np.arange(len(held)), np.arange(len(held)), batch, dev)
    neg_score = itm_log_odds(model, held.images, held.ids, held.attn, np.arange(len(held)), neg_txt, batch, dev)[ok]
    tpr = float((pos_score > 0).mean())
    tnr = float((neg_score <= 0).mean()) if ok.any() else float("nan")
    out["itm_tpr"], out["itm_tnr"], out["itm_balanced_acc"] = tpr, tnr, 0.5 * (tpr + tnr)
    out["itm_auroc"] = auroc(pos_score, neg_score)
    return out


@torch.no_grad()
def itm_log_odds(model, images: np.ndarray, ids: np.ndarray, attn: np.ndarray, img_idx: np.ndarray,
                 txt_idx: np.ndarray, batch: int, dev: torch.device) -> np.ndarray:
    """ITM log-odds of "matches" for the pairs (image ``img_idx[j]``, caption ``txt_idx[j]``)."""
    out = []
    for lo in range(0, len(img_idx), batch):
        ii, tt = img_idx[lo:lo + batch], txt_idx[lo:lo + batch]
        ih = model.image(torch.as_tensor(images[ii]).to(dev))[0]
        a = torch.as_tensor(attn[tt]).to(dev)
        mm = model.multimodal(ih, model.text(torch.as_tensor(ids[tt]).to(dev), a)[0], a)
        logits = model.itm_head(mm[:, 0]).float()
        out.append((logits[:, 1] - logits[:, 0]).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


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
    tail = [r["paired/gc"] for r in rows[-max(1, len(rows) // 4):] if "paired/gc" in r]
    metrics["train_gc_final"] = float(np.mean(tail)) if tail else float("nan")
    return metrics


def _criterion(a: float, c: float, ch: float, v) -> bool:
    return a >= v.chance_factor * ch and a >= c + v.margin


def verdict(aligned: dict[str, Any], control: dict[str, Any], cfg: TrainConfig) -> tuple[bool, list[str]]:
    """Overall generalisation: in both directions, aligned R@k ≥ factor x chance and ≥ control + margin."""
    v = cfg.validate
    k = v.recall_k
    reasons, ok = [], True
    for d in ("i2t", "t2i"):
        a, c, ch = aligned[f"{d}_r@{k}"], control[f"{d}_r@{k}"], aligned[f"{d}_chance@{k}"]
        good = _criterion(a, c, ch, v)
        ok &= good
        reasons.append(f"{d} R@{k} {a:.3f} vs chance {ch:.3f} (need ≥ {v.chance_factor:g}x = "
                       f"{v.chance_factor * ch:.3f}) and control {c:.3f} (need ≥ {c + v.margin:.3f}): "
                       f"{'ok' if good else 'FAIL'}")
    return ok, reasons


def judge_parts(aligned: dict[str, Any], control: dict[str, Any], cfg: TrainConfig) -> dict[str, dict[str, Any]]:
    """Per source and per shard, on the part's pooled queries (n):

    * ``learned``: the overall criterion holds for the part;
    * ``misaligned``: the part stays at chance or at the control's level — its recall is more than
      ``part_z`` binomial standard errors below the run's overall recall, and within ``part_z`` standard
      errors of max(chance, control);
    * ``uncertain``: neither (too few queries to tell a weaker part from a broken one);
    * ``too_few``: fewer than ``min_part_queries`` queries: reported, not judged.
    """
    v = cfg.validate
    k = v.recall_k
    n_all = aligned["images"] + aligned["texts"]
    overall = (aligned[f"i2t_r@{k}"] * aligned["images"] + aligned[f"t2i_r@{k}"] * aligned["texts"]) / max(1, n_all)
    out: dict[str, dict[str, Any]] = {}
    for kind in PART_KINDS:
        for part, a in aligned["parts"][kind].items():
            c = control["parts"][kind][part]
            ap, cp, chp, n = a[f"r@{k}"], c[f"r@{k}"], a[f"chance@{k}"], a["queries"]
            row = {"kind": kind, "part": part, "queries": n, "pairs": a["pairs"], f"r@{k}": ap,
                   f"control_r@{k}": cp, f"chance@{k}": chp}
            if n < v.min_part_queries:
                row["status"] = "too_few"
            elif _criterion(ap, cp, chp, v):
                row["status"] = "learned"
            else:
                floor = max(chp, cp)
                below_run = ap < overall - v.part_z * math.sqrt(max(overall * (1 - overall), 1e-9) / n)
                at_floor = ap <= floor + v.part_z * math.sqrt(max(floor * (1 - floor), 1e-9) / n)
                row["status"] = "misaligned" if below_run and at_floor else "uncertain"
            out[f"{kind}:{part}"] = row
    return out


def decide(aligned: dict[str, Any], control: dict[str, Any], cfg: TrainConfig, train_pairs: int
           ) -> tuple[str, bool, list[str], dict[str, dict[str, Any]], str, str]:
    """(verdict, pass, reasons, parts, why, what would decide it) — see the module docstring."""
    ok, reasons = verdict(aligned, control, cfg)
    parts = judge_parts(aligned, control, cfg)
    # Only one kind of part (sources, or shards) can carry the majority judgement; sources when the build has
    # several, else shards. A part is judged on its own queries; small parts are reported, not judged.
    kinds = [kd for kd in PART_KINDS if len(aligned["parts"][kd]) > 1]
    judged = [p for p in parts.values() if p["status"] != "too_few" and p["kind"] in kinds]
    held_pairs = max(1, aligned["pairs"])
    learned_share = max((sum(p["pairs"] for p in judged if p["kind"] == kd and p["status"] == "learned") / held_pairs
                         for kd in kinds), default=0.0)
    misaligned = sorted(name for name, p in parts.items() if p["status"] == "misaligned" and p["kind"] in kinds)
    generalises = ok or learned_share >= 0.5
    k = cfg.validate.recall_k
    if generalises and not misaligned:
        return "PASS", True, reasons, parts, "the aligned run generalises to held-out pairs on every judged part", ""
    if generalises:
        why = (f"the run generalises on most of the build ({learned_share:.0%} of held-out pairs in parts that "
               f"learned), but {', '.join(misaligned)} stay(s) at chance or at the shuffled control's level")
        return "FAIL", False, reasons, parts, why, ""
    # No transferable alignment at all: say which of the possible reasons the training losses point to.
    ln_b = math.log(cfg.data.batch_size)
    a_fit, c_fit = aligned.get("train_gc_final", float("nan")), control.get("train_gc_final", float("nan"))
    losses = f"train GC {a_fit:.2f} aligned vs {c_fit:.2f} control, ln {cfg.data.batch_size} = {ln_b:.2f}"
    if a_fit < ln_b - 0.5 and c_fit < ln_b - 0.5:
        why = (f"both runs memorised their training pairs, the shuffled control too ({losses}), and neither "
               f"transferred to held-out pairs: {train_pairs} training pairs are too few or too hard for config "
               f"`{cfg.name}` to learn alignment rather than memorise")
    elif a_fit < ln_b - 0.5:
        why = (f"the aligned run fitted its training pairs ({losses}) but that did not transfer to held-out "
               f"pairs: {train_pairs} training pairs are too few or too hard for config `{cfg.name}`")
    else:
        why = (f"neither run fitted its training pairs ({losses}): the pairs are too hard for config `{cfg.name}` "
               f"at {cfg.steps} steps, or the build is misaligned throughout")
    what = (f"held-out R@{k} of a larger run: `pmd train --config small --validate BUILD` on one GPU (~15 min) with "
            f"a build of >= {cfg.validate.decisive_pairs:,} real pairs (see bench/RESULTS.md, 'Trainer: build size'); "
            f"a build misaligned throughout stays at the control's level there too")
    return "INCONCLUSIVE", False, reasons, parts, why, what


def validate_build(build_dir: str | Path, cfg: TrainConfig, out_dir: str | Path) -> dict[str, Any]:
    """Run the aligned and the shuffled-caption runs; write ``report.json`` and ``report.md``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v = cfg.validate
    build = open_build(build_dir, verify=None)
    if cfg.data.tokenizer:
        tok = load_tokenizer_file(cfg.data.tokenizer, cfg.model.max_text_len)
    else:
        from pmd.training.run import build_captions

        tok = train_tokenizer(build_captions(build.shards), cfg.model.vocab_size, cfg.model.max_text_len)
    collator = Collator(cfg.model, cfg.masking, tok)
    train, held, how = split_build(build_dir, cfg, collator)
    log.info("validate %s: %d train / %d held-out pairs (%s)", build_dir, len(train), len(held), how)
    if len(train) < cfg.data.batch_size:
        raise UserError(f"{len(train)} training pairs are fewer than one batch ({cfg.data.batch_size})")
    aligned = train_and_evaluate(cfg, train, held, collator, train.images)
    control = train_and_evaluate(cfg, train.with_captions_permuted(cfg.seed + 99), held, collator, train.images)
    name, ok, reasons, parts, why, what = decide(aligned, control, cfg, len(train))
    k = v.recall_k

    def per(kind: str) -> dict[str, Any]:
        return {p["part"]: {key: val for key, val in p.items() if key not in ("kind", "part")}
                for p in parts.values() if p["kind"] == kind}

    report = {"verdict": name, "pass": bool(ok and name == "PASS"), "why": why, "decide": what,
              "misaligned": [p for p, row in parts.items() if row["status"] == "misaligned"
                             and (name == "FAIL")],
              "per_source": per("source"), "per_shard": per("shard"),
              "build": str(build_dir), "split": how, "train_pairs": len(train), "holdout_pairs": len(held),
              "criterion": {"recall_k": k, "chance_factor": v.chance_factor, "margin": v.margin,
                            "min_part_queries": v.min_part_queries,
                            "rule": f"PASS: aligned held-out R@{k} >= factor x chance and >= control R@{k} + margin "
                                    f"in both directions (or on parts holding most held-out pairs), and on every "
                                    f"judged source/shard; FAIL: as PASS but some judged part fails; "
                                    f"INCONCLUSIVE: neither"},
              "reasons": reasons, "aligned": aligned, "control": control, "config": to_dict(cfg)}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(render_markdown(report))
    return report


def render_markdown(r: dict[str, Any]) -> str:
    a, c = r["aligned"], r["control"]
    k = r["criterion"]["recall_k"]
    lines = [f"# Build validation: {r['verdict']}", "", r["why"] + ".", ""]
    if r["decide"]:
        lines += [f"What would decide it: {r['decide']}.", ""]
    if r["misaligned"]:
        lines += ["Misaligned parts: " + ", ".join(f"`{m}`" for m in r["misaligned"]), ""]
    lines += [f"Build `{r['build']}`: {r['train_pairs']} training pairs, {r['holdout_pairs']} held-out pairs "
              f"({r['split']}); config `{r['config']['name']}`, {r['config']['steps']} steps, seed {r['config']['seed']}.",
              "", "Control: the same run with captions shuffled across the training samples.", "",
              "| held-out metric | aligned | shuffled control | chance |", "| --- | --- | --- | --- |"]
    for d, name in (("i2t", "image→text"), ("t2i", "text→image")):
        for kk in (1, 5, 10):
            lines.append(f"| {name} R@{kk} | {a[f'{d}_r@{kk}']:.3f} | {c[f'{d}_r@{kk}']:.3f} | {a[f'{d}_chance@{kk}']:.3f} |")
        lines.append(f"| {name} median rank | {a[f'{d}_median_rank']:.0f} | {c[f'{d}_median_rank']:.0f} | "
                     f"{a[f'{d}_chance_median_rank']:.0f} |")
    lines += [f"| GC loss (batch {a['gc_batch']}) | {a['gc_loss']:.3f} | {c['gc_loss']:.3f} | ln {a['gc_batch']} = {a['gc_chance']:.3f} |",
              f"| ITM balanced accuracy | {a['itm_balanced_acc']:.3f} | {c['itm_balanced_acc']:.3f} | 0.500 |",
              f"| ITM AUROC | {a['itm_auroc']:.3f} | {c['itm_auroc']:.3f} | 0.500 |", "",
              f"Held-out gallery: {a['images']} distinct images, {a['texts']} distinct captions.", ""]
    for kind, table in (("source", r["per_source"]), ("shard", r["per_shard"])):
        lines += [f"## Held-out R@{k} per {kind} (both directions pooled)", "",
                  f"| {kind} | queries | aligned | control | chance | status |", "| --- | --- | --- | --- | --- | --- |"]
        for part, row in table.items():
            lines.append(f"| {part} | {row['queries']} | {row[f'r@{k}']:.3f} | {row[f'control_r@{k}']:.3f} | "
                         f"{row[f'chance@{k}']:.3f} | {row['status']} |")
        lines.append("")
    lines += ["## Criterion", "", r["criterion"]["rule"] + f" (parts with < {r['criterion']['min_part_queries']} "
              "queries are reported, not judged).", ""]
    lines += [f"- {x}" for x in r["reasons"]]
    return "\n".join(lines) + "\n"
