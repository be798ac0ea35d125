"""Visual-code targets for MMM-image and MIM.

FLAVA used the DALL-E dVAE encoder (8192 codes, 112 px input, one code per 16 px patch of the
224 px image). Its weights are a download, and a randomly initialised dVAE collapses to a few dozen
codes on real photos, so its targets teach the model the code prior, not the image. The default
here needs no download and stays informative:

* ``random_projection`` (BEST-RQ style, arXiv 2202.01855): each patch pooled to 8x8x3, standardised,
  projected by a fixed random matrix to 32 dims, L2-normalised, nearest of ``codes`` random unit
  vectors. Deterministic from the seed; no training.
* ``kmeans``: the same patch features, nearest centroid of a k-means codebook fitted on patches
  sampled from the shards (``fit_kmeans``).
* ``dvae``: the DALL-E encoder architecture (``DalleEncoder``), loading a user-supplied state_dict
  (parameter names follow the public encoder: ``blocks.input.w`` ...).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from pmd.errors import UserError
from pmd.training.config import CodebookConfig, ModelConfig
from pmd.training.model import to_unit_float

log = logging.getLogger(__name__)


def patch_features(images: torch.Tensor, patch_size: int, pixels: int) -> torch.Tensor:
    """(B,3,H,W) → (B, P, 3·pixels²): each patch area-pooled to pixels x pixels, standardised per patch."""
    x = to_unit_float(images)
    b, _, h, w = x.shape
    gh, gw = h // patch_size, w // patch_size
    x = F.adaptive_avg_pool2d(x, (gh * pixels, gw * pixels))
    x = x.view(b, 3, gh, pixels, gw, pixels).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, -1)
    x = x - x.mean(-1, keepdim=True)
    return x / (x.std(-1, keepdim=True) + 1e-2)  # the floor keeps flat patches from amplifying noise


class RandomProjectionQuantizer(nn.Module):
    def __init__(self, patch_size: int, pixels: int = 8, dim: int = 32, codes: int = 8192, seed: int = 1234) -> None:
        super().__init__()
        self.patch_size, self.pixels, self.codes = patch_size, pixels, codes
        g = torch.Generator().manual_seed(seed)
        feat = 3 * pixels * pixels
        self.register_buffer("projection", torch.randn(feat, dim, generator=g) / math.sqrt(feat))
        self.register_buffer("codebook", F.normalize(torch.randn(codes, dim, generator=g), dim=-1))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = F.normalize(patch_features(images, self.patch_size, self.pixels) @ self.projection, dim=-1)
        return (z @ self.codebook.T).argmax(-1)


class KMeansCodebook(nn.Module):
    def __init__(self, patch_size: int, pixels: int, centroids: torch.Tensor) -> None:
        super().__init__()
        self.patch_size, self.pixels, self.codes = patch_size, pixels, centroids.shape[0]
        self.register_buffer("centroids", centroids)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f = patch_features(images, self.patch_size, self.pixels)
        d = (f * f).sum(-1, keepdim=True) - 2 * f @ self.centroids.T + (self.centroids ** 2).sum(-1)
        return d.argmin(-1)


def fit_kmeans(features: torch.Tensor, k: int, iters: int = 20, seed: int = 0) -> torch.Tensor:
    """Lloyd's k-means (k-means++ seeding on a subsample); empty clusters are re-seeded."""
    g = torch.Generator().manual_seed(seed)
    x = features.float()
    n = x.shape[0]
    k = min(k, n)
    cent = x[torch.randint(n, (1,), generator=g)]
    sub = x[torch.randperm(n, generator=g)[: min(n, 20 * k)]]
    while cent.shape[0] < k:  # k-means++ in chunks of up to 64 new centres per round
        d = torch.cdist(sub, cent).min(1).values.pow(2)
        take = min(k - cent.shape[0], 64)
        cent = torch.cat([cent, sub[torch.multinomial(d + 1e-12, take, generator=g)]])
    for _ in range(iters):
        assign = torch.cdist(x, cent).argmin(1)
        sums = torch.zeros_like(cent).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).float()
        empty = counts == 0
        cent = torch.where(empty[:, None], x[torch.randint(n, (k,), generator=g)], sums / counts.clamp(min=1)[:, None])
    return cent


class _Conv(nn.Module):
    """Conv2d with DALL-E's parameter names ``w``/``b`` and 'same' padding."""

    def __init__(self, n_in: int, n_out: int, kw: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_out, n_in, kw, kw) / math.sqrt(n_in * kw * kw))
        self.b = nn.Parameter(torch.zeros(n_out))
        self.pad = (kw - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.w, self.b, padding=self.pad)


class _EncoderBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int, n_layers: int) -> None:
        super().__init__()
        hid = n_out // 4
        self.post_gain = 1.0 / n_layers ** 2
        self.id_path = _Conv(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        self.res_path = nn.Sequential(OrderedDict([
            ("relu_1", nn.ReLU()), ("conv_1", _Conv(n_in, hid, 3)),
            ("relu_2", nn.ReLU()), ("conv_2", _Conv(hid, hid, 3)),
            ("relu_3", nn.ReLU()), ("conv_3", _Conv(hid, hid, 3)),
            ("relu_4", nn.ReLU()), ("conv_4", _Conv(hid, n_out, 1))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.id_path(x) + self.post_gain * self.res_path(x)


class DalleEncoder(nn.Module):
    """The DALL-E dVAE encoder architecture: 7x7 input conv, 4 groups x 2 residual blocks
    (1, 2, 4, 8 x ``hidden`` channels), max-pool after groups 1–3 (÷8), ReLU + 1x1 conv to ``codes``;
    argmax gives one code per 8x8 input cell. Input: the image at half the encoder resolution."""

    def __init__(self, hidden: int = 256, codes: int = 8192, blocks_per_group: int = 2) -> None:
        super().__init__()
        self.codes = codes
        n_layers = 4 * blocks_per_group
        widths = [hidden, hidden, 2 * hidden, 4 * hidden, 8 * hidden]
        groups: list[tuple[str, nn.Module]] = [("input", _Conv(3, hidden, 7))]
        for gi in range(4):
            layers: list[tuple[str, nn.Module]] = [
                (f"block_{i + 1}", _EncoderBlock(widths[gi] if i == 0 else widths[gi + 1], widths[gi + 1], n_layers))
                for i in range(blocks_per_group)]
            if gi < 3:
                layers.append(("pool", nn.MaxPool2d(2)))
            groups.append((f"group_{gi + 1}", nn.Sequential(OrderedDict(layers))))
        groups.append(("output", nn.Sequential(OrderedDict([("relu", nn.ReLU()), ("conv", _Conv(8 * hidden, codes, 1))]))))
        self.blocks = nn.Sequential(OrderedDict(groups))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) at the encoder resolution → (B, (H/16)·(W/16)) codes."""
        x = to_unit_float(images)
        x = F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True, align_corners=False)
        x = 0.8 * x + 0.1  # DALL-E's map_pixels (eps 0.1)
        return self.blocks(x).argmax(1).flatten(1)


def load_dvae(path: str | Path, hidden: int = 256, codes: int = 8192) -> DalleEncoder:
    """A ``DalleEncoder`` with a user-supplied state_dict (``torch.save(encoder.state_dict())``)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"dVAE weights {p} not found (give a state_dict saved with torch.save)")
    state = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise UserError(f"{p}: expected a state_dict (a mapping of tensors)")
    enc = DalleEncoder(hidden, codes)
    missing, unexpected = enc.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"{p}: not a DALL-E encoder state_dict (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return enc.eval()


def build_codebook(cfg: CodebookConfig, model: ModelConfig, images: Iterable[torch.Tensor] | None = None) -> nn.Module:
    """The target generator named by ``cfg.kind``; ``kmeans`` fits on ``images`` (batches of (B,3,H,W))."""
    if cfg.kind == "random_projection":
        return RandomProjectionQuantizer(model.patch_size, cfg.pixels, cfg.dim, cfg.codes, cfg.seed)
    if cfg.kind == "kmeans":
        if images is None:
            raise UserError("codebook.kind=kmeans needs images to fit on")
        feats, have = [], 0
        for batch in images:
            f = patch_features(batch, model.patch_size, cfg.pixels).flatten(0, 1)
            feats.append(f)
            have += f.shape[0]
            if have >= cfg.kmeans_patches:
                break
        if not feats:
            raise UserError("codebook.kind=kmeans: no images to fit on")
        x = torch.cat(feats)[: cfg.kmeans_patches]
        log.info("fitting k-means codebook: %d codes on %d patches", cfg.codes, x.shape[0])
        return KMeansCodebook(model.patch_size, cfg.pixels, fit_kmeans(x, cfg.codes, cfg.kmeans_iters, cfg.seed))
    if cfg.dvae_weights is None:
        raise UserError("codebook.kind=dvae needs codebook.dvae_weights (a state_dict file); "
                        "no weights are downloaded")
    return load_dvae(cfg.dvae_weights, cfg.dvae_hidden, cfg.codes)


def code_usage(codes: torch.Tensor) -> tuple[int, float]:
    """(distinct codes, share of the most common code) — how informative the targets are."""
    counts = torch.bincount(codes.flatten())
    return int((counts > 0).sum()), float(counts.max() / counts.sum())
