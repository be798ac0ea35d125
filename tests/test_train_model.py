"""Unit tests of the FLAVA trainer on synthetic tensors: shapes, masks, losses, resume."""

from __future__ import annotations

import math

import os

import numpy as np
import pytest
import torch

from pmd.training.codebook import build_codebook
from pmd.training.config import load_train_config
from pmd.training.data import Collator, InMemoryPairs, batch_kinds, train_tokenizer
from pmd.training.losses import choose_negatives, contrastive_loss
from pmd.training.masking import BlockMasker, mask_tokens
from pmd.training.model import FlavaModel
from pmd.training.trainer import Trainer, warmup_cosine

torch.set_num_threads(int(os.environ.get("PMD_TEST_THREADS", "2")))  # 2 cores in CI

CAPTIONS = [f"a {c} {s} left of a {c2} {s2}" for c in ("red", "blue", "green", "pink") for s in ("circle", "square")
            for c2 in ("yellow", "purple") for s2 in ("star", "hexagon")]


@pytest.fixture(scope="module")
def cfg():
    return load_train_config("tiny", {"loss.itm_negative_fraction": 0.25})


@pytest.fixture(scope="module")
def tok(cfg):
    return train_tokenizer(CAPTIONS, cfg.model.vocab_size, cfg.model.max_text_len)


@pytest.fixture(scope="module")
def pairs(cfg, tok):
    return synthetic_pairs(cfg, tok)


def synthetic_pairs(cfg, tok):
    rng = np.random.default_rng(0)
    n = 128
    col = Collator(cfg.model, cfg.masking, tok)
    captions = [CAPTIONS[i % len(CAPTIONS)] for i in range(n)]
    size = cfg.model.image_size
    cell = size // 4
    images = np.zeros((n, 3, size, size), dtype=np.uint8)
    for i in range(n):  # a coloured block whose colour/position follow the caption index: learnable
        j = i % len(CAPTIONS)
        images[i, j % 3, (j // 4) % 4 * cell:(j // 4) % 4 * cell + cell, j % 4 * cell:j % 4 * cell + cell] = 255
        images[i] = np.clip(images[i] // 2 + rng.integers(0, 128, images[i].shape), 0, 255)  # distinct textures
    ids, attn = col.tokenize(captions)
    return InMemoryPairs(images, ids, attn, [str(i) for i in range(n)], captions), col


def test_base_config_shapes_match_flava_base():
    cfg = load_train_config("base")
    m = cfg.model
    assert (m.image_size // m.patch_size) ** 2 + 1 == 197
    assert (m.image.width, m.image.layers, m.text.layers, m.multimodal.layers, m.multimodal.width) == (768, 12, 12, 6, 768)
    assert m.vocab_size == 30522 and cfg.codebook.codes == 8192 and cfg.masking.mim_patches == 75
    assert abs(m.logit_scale_init - math.log(1 / 0.07)) < 1e-3


def test_encoder_output_shapes(cfg):
    model = FlavaModel(cfg.model, cfg.codebook.codes).eval()
    s = cfg.model.image_size
    img = torch.randint(0, 255, (3, 3, s, s), dtype=torch.uint8)
    pre, post = model.image(img)
    assert pre.shape == post.shape == (3, 17, 128)
    ids = torch.randint(5, 100, (3, 24))
    attn = torch.ones(3, 24, dtype=torch.bool)
    t = model.text(ids, attn)[1]
    assert t.shape == (3, 24, 128)
    mm = model.multimodal(pre, t, attn)
    assert mm.shape == (3, 1 + 17 + 24, 128)
    assert model.embed_image(img).norm(dim=-1).allclose(torch.ones(3))


def test_multimodal_encoder_ignores_padded_text(cfg):
    torch.manual_seed(0)
    model = FlavaModel(cfg.model, cfg.codebook.codes).eval()
    s = cfg.model.image_size
    img_h = model.image(torch.randint(0, 255, (2, 3, s, s), dtype=torch.uint8))[0]
    txt_a = torch.randn(2, 24, 128)
    txt_b = txt_a.clone()
    txt_b[:, 10:] = torch.randn(2, 14, 128) * 5  # garbage in the padded positions
    attn = torch.zeros(2, 24, dtype=torch.bool)
    attn[:, :10] = True
    with torch.no_grad():
        a = model.multimodal(img_h, txt_a, attn)[:, :1 + 17 + 10]
        b = model.multimodal(img_h, txt_b, attn)[:, :1 + 17 + 10]
        c = model.multimodal(img_h, txt_b, torch.ones_like(attn))[:, :1 + 17 + 10]
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)


def test_beit_block_masking_statistics():
    masker = BlockMasker(grid=14, num_masked=75, min_block=16, aspect=(0.3, 1 / 0.3))
    rng = np.random.default_rng(0)
    counts, first_blocks = [], []
    for _ in range(300):
        m = masker(rng)
        counts.append(int(m.sum()))
        idx, valid = masker.indices(m)
        assert valid.sum() == m.sum() and set(idx[valid]) == set(np.flatnonzero(m))
    counts = np.array(counts)
    assert counts.max() <= 75
    assert 72.0 <= counts.mean() <= 75.0  # BEiT/FLAVA measured mean 74.5
    # blocks: the first rectangle alone has area >= 16 (later ones may be clipped by overlaps)
    for _ in range(100):
        one = np.zeros((14, 14), dtype=bool)
        added = masker._add_block(one, 75, rng)
        if added:
            first_blocks.append(added)
    assert min(first_blocks) >= 15 and len(first_blocks) >= 95  # round(sqrt) can shave one patch off 16


def test_mlm_masking_80_10_10(tok, cfg):
    col = Collator(cfg.model, cfg.masking, tok)
    ids, attn = col.tokenize(CAPTIONS * 40)
    rng = np.random.default_rng(0)
    selected = replaced_mask = replaced_random = kept = eligible = 0
    for i, a in zip(ids, attn):
        out, pos, labels = mask_tokens(i, a, col.special, col.mask_id, cfg.model.vocab_size, rng, slots=col.slots)
        sel = pos[labels >= 0]
        assert not col.special[i[sel]].any()            # never [CLS]/[SEP]/[PAD]
        assert (labels[labels >= 0] == i[sel]).all()     # labels are the original tokens
        untouched = np.setdiff1d(np.arange(len(i)), sel)
        assert (out[untouched] == i[untouched]).all()
        eligible += int((a & ~col.special[i]).sum())
        selected += len(sel)
        replaced_mask += int((out[sel] == col.mask_id).sum())
        kept += int((out[sel] == i[sel]).sum())
        replaced_random += int(((out[sel] != col.mask_id) & (out[sel] != i[sel])).sum())
    assert abs(selected / eligible - 0.15) < 0.02
    assert abs(replaced_mask / selected - 0.8) < 0.04
    assert abs(kept / selected - 0.1) < 0.04  # includes the rare random token equal to the original
    assert abs(replaced_random / selected - 0.1) < 0.04


def test_itm_negatives_never_pair_identical_captions():
    ids = torch.tensor([[1, 5], [1, 5], [1, 6], [1, 7], [1, 5], [1, 8]])
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        partner, neg = choose_negatives(ids, 1.0, None, g)
        assert neg.all()
        assert not (ids[partner] == ids).all(1).any()
    sims = torch.full((6, 6), -50.0)
    sims[0, 3] = 50.0  # hard negatives follow the similarities
    partner, _ = choose_negatives(ids, 1.0, sims, g)
    assert int(partner[0]) == 3


def test_contrastive_loss_at_init_is_ln_batch_and_rows_can_be_dropped():
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(64, 32), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(64, 32), dim=-1)
    loss = contrastive_loss(img, txt, torch.tensor(1.0))
    assert abs(float(loss) - math.log(64)) < 0.1
    w = torch.ones(64, dtype=torch.bool)
    w[:32] = False
    per_half = contrastive_loss(img, txt, torch.tensor(1.0), w)
    assert float(per_half) != pytest.approx(float(loss))


def test_warmup_cosine_schedule():
    f = warmup_cosine(10, 110, 0.0)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0, abs=1e-9)


SMALL = {"width": 64, "layers": 1, "heads": 2, "mlp_ratio": 2.0}


def test_every_loss_decreases_when_fitting_fixed_batches(tok):
    cfg = load_train_config("tiny", {"optim.warmup_steps": 2, "optim.max_steps": 100, "optim.lr": 0.003,
                                     "data.image_weight": 1.0, "data.text_weight": 1.0, "model.image": SMALL, "model.text": SMALL, "model.multimodal": SMALL,
                                     "model.embed_dim": 64})
    data, col = synthetic_pairs(cfg, tok)
    trainer = Trainer(cfg, build_codebook(cfg.codebook, cfg.model))
    fixed = {kind: next(data.batches(col, 16, iter([kind]), seed=0))[1] for kind in ("paired", "image", "text")}
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for kind in ["paired"] * 14 + ["image", "text"] * 6:
        out = trainer.train_step(kind, fixed[kind])
        for k in ("gc", "itm", "mmm_text", "mmm_image", "mlm", "mim"):
            if k in out:
                first.setdefault(k, float(out[k]))
                last[k] = float(out[k])
    # GC starts at chance (ln batch); it leaves that plateau only after tens of steps on varied data,
    # which the validation tests check on held-out pairs (aligned vs shuffled control).
    assert abs(first["gc"] - math.log(16)) < 0.3
    assert last["mmm_text"] < first["mmm_text"] - 1.0
    assert last["mmm_image"] < first["mmm_image"] - 1.0
    assert last["mlm"] < first["mlm"] - 1.0
    assert last["mim"] < first["mim"] - 0.5


def test_checkpoint_resume_gives_identical_next_step(cfg, pairs, tmp_path):
    data, col = pairs

    def stream(start):
        return data.batches(col, 32, batch_kinds({"paired": 1, "text": 1}, "round_robin", 0), seed=3, start=start)

    a = Trainer(cfg, build_codebook(cfg.codebook, cfg.model))
    it = stream(0)
    for _ in range(3):
        a.train_step(*next(it))
    a.save(tmp_path / "last.pt")
    expected = [float(a.train_step(*next(it))["loss"]) for _ in range(2)]

    torch.manual_seed(12345)  # a different process state: everything must come from the checkpoint
    b = Trainer(cfg, build_codebook(cfg.codebook, cfg.model))
    state = b.resume(tmp_path / "last.pt")
    assert state["data_position"] == 3 and b.step == 3
    it_b = stream(state["data_position"])
    got = [float(b.train_step(*next(it_b))["loss"]) for _ in range(2)]
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_bad_config_key_is_a_user_error():
    from pmd.errors import UserError

    with pytest.raises(UserError, match="widht"):
        load_train_config("tiny", {"model.image.widht": 3})
    with pytest.raises(UserError, match="not found"):
        load_train_config("no-such-config")


def test_itm_negatives_stay_gc_rows_and_leave_mmm(tok):
    """GC is computed over every row, ITM negatives included (their unimodal image and caption still match);
    MMM losses skip the negatives (their multimodal caption is another image's)."""
    from pmd.training.losses import FlavaPretraining

    cfg = load_train_config("tiny", {"loss.itm_negative_fraction": 0.5, "model.image": SMALL, "model.text": SMALL,
                                     "model.multimodal": SMALL, "model.embed_dim": 64})
    data, col = synthetic_pairs(cfg, tok)
    model = FlavaModel(cfg.model, cfg.codebook.codes)
    objective = FlavaPretraining(model, build_codebook(cfg.codebook, cfg.model), cfg.loss)
    _, batch = next(data.batches(col, 16, iter(["paired"]), seed=0))
    torch.manual_seed(0)
    with torch.no_grad():
        out = objective(batch, "paired")
        torch.manual_seed(0)
        _, neg = choose_negatives(batch["ids"], 0.5, None)  # the same draw the forward made
        img, txt = model.embed_image(batch["images"]), model.embed_text(batch["ids"], batch["attn"])
        every_row = contrastive_loss(img, txt, model.clamped_scale())
        positives_only = contrastive_loss(img, txt, model.clamped_scale(), ~neg)
    assert 0 < int(neg.sum()) < 16
    assert float(out["gc"]) == pytest.approx(float(every_row), rel=1e-5)
    assert float(out["gc"]) != pytest.approx(float(positives_only), rel=1e-3)
    all_negative = FlavaPretraining(model, objective.codebook, load_train_config(
        "tiny", {"loss.itm_negative_fraction": 1.0}).loss)
    with torch.no_grad():
        out = all_negative(batch, "paired")
    assert float(out["mmm_text"]) == 0.0 and float(out["mmm_image"]) == 0.0 and float(out["gc"]) > 0


def test_hard_negative_step_runs(tok):
    cfg = load_train_config("tiny", {"loss.itm_negatives": "hard", "loss.itm_negative_fraction": 0.5,
                                     "model.image": SMALL, "model.text": SMALL, "model.multimodal": SMALL,
                                     "model.embed_dim": 64})
    data, col = synthetic_pairs(cfg, tok)
    trainer = Trainer(cfg, build_codebook(cfg.codebook, cfg.model))
    _, batch = next(data.batches(col, 16, iter(["paired"]), seed=0))
    out = trainer.train_step("paired", batch)
    assert all(torch.isfinite(out[k]) for k in ("gc", "itm", "mmm_image", "mmm_text"))


def test_heads_no_loss_uses_are_frozen_so_ddp_needs_no_unused_parameter_search():
    from pmd.training.trainer import freeze_unused_heads

    cfg = load_train_config("tiny", {"model.image": SMALL, "model.text": SMALL, "model.multimodal": SMALL,
                                     "model.embed_dim": 64})
    model = FlavaModel(cfg.model, cfg.codebook.codes)
    assert freeze_unused_heads(model, cfg) is False  # paired only: one batch kind, every trainable param used
    assert not any(p.requires_grad for p in model.mim_head.parameters())
    assert not any(p.requires_grad for p in model.mlm_head.parameters())
    assert all(p.requires_grad for p in model.mmm_text_head.parameters())
    mixed = load_train_config("tiny", {"data.image_weight": 1.0})
    assert freeze_unused_heads(FlavaModel(mixed.model, mixed.codebook.codes), mixed) is True
    # a paired step really leaves nothing trainable without a gradient
    data, col = synthetic_pairs(cfg, train_tokenizer(CAPTIONS, cfg.model.vocab_size))
    trainer = Trainer(cfg, build_codebook(cfg.codebook, cfg.model))
    _, batch = next(data.batches(col, 16, iter(["paired"]), seed=0))
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.objective(batch, "paired")["loss"].backward()
    idle = [n for n, p in trainer.model.named_parameters() if p.requires_grad and p.grad is None]
    assert idle == []


def test_checkpoint_refuses_a_pickle_that_would_run_code(tmp_path):
    from pmd.errors import UserError
    from pmd.training.checkpoint import read_checkpoint, save_checkpoint

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "evil.pt"
    torch.save({"kind": "pmd-flava", "model": {}, "x": Evil()}, bad)
    with pytest.raises(UserError, match="refused"):
        read_checkpoint(bad)
    assert not marker.exists()
    with pytest.raises(ValueError, match="plain types"):
        save_checkpoint(tmp_path / "c.pt", {"x": Evil()})
    ok = save_checkpoint(tmp_path / "ok.pt", {"model": {"w": torch.ones(2)}, "step": 3, "cfg": {"a": (1, 2)}})
    assert read_checkpoint(ok)["step"] == 3


def test_batch_kinds_round_robin_and_weighted():
    rr = batch_kinds({"paired": 1.0, "image": 0.5, "text": 0.0}, "round_robin", 0)
    assert [next(rr) for _ in range(4)] == ["paired", "image", "paired", "image"]
    w = batch_kinds({"paired": 3.0, "image": 1.0, "text": 0.0}, "weighted", 0)
    kinds = [next(w) for _ in range(4000)]
    assert abs(kinds.count("paired") / 4000 - 0.75) < 0.03 and "text" not in kinds
    again = batch_kinds({"paired": 3.0, "image": 1.0, "text": 0.0}, "weighted", 0)
    assert [next(again) for _ in range(50)] == kinds[:50]  # same seed on every rank → same modality


def _reference_losses(obj, batch, kind):
    """The straightforward FLAVA step the trainer must equal: separate unmasked and masked passes, every encoder
    row computed, vocabulary logits at every position, then gathered at the masked ones."""
    import torch.nn.functional as F

    from pmd.training.losses import choose_negatives, contrastive_loss

    m, w = obj.model, obj.w

    def ce_at(logits, pos, labels):  # full (B,N,V) logits, gathered at pos (B,M)
        picked = logits.gather(1, pos[..., None].expand(-1, -1, logits.shape[-1]))
        return F.cross_entropy(picked.flatten(0, 1), labels.flatten(), ignore_index=-1, reduction="sum") / (
            labels >= 0).sum().clamp(min=1)

    if kind == "image":
        h = m.image(batch["images"], batch["patch_mask"])[1][:, 1:]
        return {"mim": ce_at(m.mim_head(h), batch["patch_idx"], obj._image_labels(batch))}
    if kind == "text":
        h = m.text(batch["masked_ids"], batch["attn"])[1]
        return {"mlm": ce_at(m.mlm_head(h), batch["mlm_pos"], batch["mlm_labels"])}
    images, ids, attn = batch["images"], batch["ids"], batch["attn"]
    img = F.normalize(m.image_projection(m.image(images)[1][:, 0]), dim=-1)
    txt = F.normalize(m.text_projection(m.text(ids, attn)[1][:, 0]), dim=-1)
    sims = (img @ txt.T).detach() * m.clamped_scale().detach() if w.itm_negatives == "hard" else None
    partner, neg = choose_negatives(ids, w.itm_negative_fraction, sims)
    out = {"gc": contrastive_loss(img, txt, m.clamped_scale())}
    img_pre = m.image(images, batch["patch_mask"])[0]
    txt_pre = m.text(batch["masked_ids"], attn)[0]
    take = torch.where(neg, partner, torch.arange(ids.shape[0]))
    mm = m.multimodal(img_pre, txt_pre[take], attn[take])
    out["itm"] = F.cross_entropy(m.itm_head(mm[:, 0]), (~neg).long())
    n_img = img_pre.shape[1]
    out["mmm_image"] = ce_at(m.mmm_image_head(mm[:, 2:1 + n_img]), batch["patch_idx"],
                             torch.where(neg[:, None], -1, obj._image_labels(batch)))
    out["mmm_text"] = ce_at(m.mmm_text_head(mm[:, 1 + n_img:]), batch["mlm_pos"],
                            torch.where(neg[:, None], -1, batch["mlm_labels"]))
    return out


@pytest.mark.parametrize("negatives", ["random", "hard"])
def test_step_equals_the_straightforward_computation(tok, negatives):
    """The trainer's shortcuts (masked and unmasked passes stacked, last layers computed only at the rows a loss
    reads, vocabulary logits only at masked positions) give the same losses and gradients as computing everything."""
    from pmd.training.losses import FlavaPretraining

    two = {"width": 64, "layers": 2, "heads": 2, "mlp_ratio": 2.0}
    cfg = load_train_config("tiny", {"loss.itm_negative_fraction": 0.3, "loss.itm_negatives": negatives,
                                     "model.image": two, "model.text": two, "model.multimodal": two,
                                     "model.embed_dim": 64})
    data, col = synthetic_pairs(cfg, tok)
    torch.manual_seed(3)
    obj = FlavaPretraining(FlavaModel(cfg.model, cfg.codebook.codes), build_codebook(cfg.codebook, cfg.model), cfg.loss)
    params = [p for p in obj.model.parameters() if p.requires_grad]
    for kind in ("paired", "image", "text"):
        _, batch = next(data.batches(col, 12, iter([kind]), seed=1))
        if kind == "text":  # padded captions: the key mask matters in both towers and in fusion
            assert not bool(batch["attn"].all())
        results = []
        for fn in (lambda: obj(batch, kind), lambda: _reference_losses(obj, batch, kind)):
            torch.manual_seed(11)  # the same ITM negatives for both
            losses = fn()
            names = [k for k in ("gc", "itm", "mmm_image", "mmm_text", "mim", "mlm") if k in losses]
            grads = torch.autograd.grad(sum(losses[k] for k in names), params, allow_unused=True)
            results.append(({k: float(losses[k].detach()) for k in names}, grads))
        (got, got_g), (want, want_g) = results
        assert got.keys() == want.keys() and len(got) in (1, 4)
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6)
        used = 0
        for p, a, b in zip(params, got_g, want_g):
            assert (a is None) == (b is None)
            if a is not None:
                used += 1
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        assert used > 10


def test_encoder_rows_equal_full_rows_gathered():
    from pmd.training.attention import Encoder

    torch.manual_seed(0)
    enc = Encoder(32, 3, 4, 2.0, 1e-12).eval()
    x = torch.randn(5, 9, 32)
    mask = torch.ones(5, 9, dtype=torch.bool)
    mask[1:, 6:] = False
    rows = torch.tensor([[0, 3, 3], [8, 1, 0], [2, 2, 5], [7, 6, 0], [4, 0, 1]])
    with torch.no_grad():
        full_pre, full_post = enc(x, mask)
        pre, post = enc(x, mask, rows)
        cls, rest = enc.split_last(x, mask, 2)
    idx = rows[..., None].expand(-1, -1, 32)
    torch.testing.assert_close(pre, full_pre.gather(1, idx), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(post, full_post.gather(1, idx), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cls, full_post[:2, 0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rest, full_pre[2:], rtol=1e-5, atol=1e-6)


def test_onednn_linear_equals_f_linear(monkeypatch):
    """The fp32 CPU linears on oneDNN (forward and both backward products; the default off Intel CPUs, forced on
    here): same values and gradients as ``F.linear`` for 2-D/3-D, strided inputs, a row slice of a weight (the last
    block's Q and K/V), no bias, a frozen weight; bf16 autocast and inputs of a few rows fall back to ``F.linear``;
    with ``ONEDNN_LINEAR`` off every input does."""
    import torch.nn.functional as F

    from pmd.training import attention

    if attention._LINEAR_POINTWISE is None:
        pytest.skip("this torch has no oneDNN linear")
    monkeypatch.setattr(attention, "ONEDNN_LINEAR", True)
    torch.manual_seed(0)
    full = torch.randn(3 * 48, 32, requires_grad=True)
    bias = torch.randn(3 * 48, requires_grad=True)
    cases = [(torch.randn(4, 7, 32), full[:48], bias[:48]), (torch.randn(7, 4, 32).transpose(0, 1), full[48:], bias[48:]),
             (torch.randn(32, 20).t(), full, None), (torch.randn(4, 5, 32), full.detach(), bias)]
    for x, w, b in cases:
        x = x.requires_grad_()
        y = attention.linear(x, w, b)
        assert type(y.grad_fn).__name__ == "_OneDnnLinearBackward"
        gy = torch.randn_like(y)
        wants = [t for t in (x, w, b) if t is not None and t.requires_grad]
        got = torch.autograd.grad(y, wants, gy)
        ref = F.linear(x, w, b)
        want = torch.autograd.grad(ref, wants, gy)
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
        for a, c in zip(got, want):
            torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert type(attention.linear(torch.randn(20, 32), full).grad_fn).__name__ != "_OneDnnLinearBackward"
    assert type(attention.linear(torch.randn(2, 32), full).grad_fn).__name__ != "_OneDnnLinearBackward"  # few rows
    monkeypatch.setattr(attention, "ONEDNN_LINEAR", False)
    assert type(attention.linear(torch.randn(20, 32), full).grad_fn).__name__ != "_OneDnnLinearBackward"


def test_step_with_onednn_matmuls_equals_the_aten_step(tok, monkeypatch):
    """A whole paired step on oneDNN's fp32 matmuls gives the losses and gradients of the same step on ``aten::mm``."""
    from pmd.training import attention
    from pmd.training.losses import FlavaPretraining

    cfg = load_train_config("tiny", {"loss.itm_negative_fraction": 0.3})
    data, col = synthetic_pairs(cfg, tok)
    torch.manual_seed(3)
    obj = FlavaPretraining(FlavaModel(cfg.model, cfg.codebook.codes), build_codebook(cfg.codebook, cfg.model), cfg.loss)
    params = [p for p in obj.model.parameters() if p.requires_grad]
    _, batch = next(data.batches(col, 12, iter(["paired"]), seed=1))
    results = []
    for on in (True, False):
        monkeypatch.setattr(attention, "ONEDNN_LINEAR", on)
        torch.manual_seed(11)
        losses = obj(batch, "paired")
        names = ["gc", "itm", "mmm_image", "mmm_text"]
        results.append(([float(losses[k].detach()) for k in names],
                        torch.autograd.grad(sum(losses[k] for k in names), params, allow_unused=True)))
    (got, got_g), (want, want_g) = results
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)
    for a, b in zip(got_g, want_g):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
