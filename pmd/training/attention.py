"""Pre-LN transformer blocks on ``F.scaled_dot_product_attention`` (flash/mem-efficient paths).

Padding is a boolean key mask (True = attend) broadcast as ``(B, 1, 1, L)``; without padding the
mask is omitted so SDPA can take the flash kernel. One fused QKV projection per layer.

The last block can be asked for a subset of query rows (``rows``): every position still supplies
keys and values, but queries, the output projection and the MLP run only where a loss reads the
output (the CLS row of a contrastive pass, the masked positions and ``[CLS_M]`` of the fusion pass).
That is exact: a row's output in a block depends on the other rows only through keys and values.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn


def _cpu_vendor() -> str:
    """The x86 vendor string (``GenuineIntel``, ``AuthenticAMD``, ...) from /proc/cpuinfo; "" where unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


# fp32 matmuls on CPU through oneDNN rather than the BLAS that ``aten::mm`` calls (MKL), but only off Intel CPUs.
# MKL takes slower code paths on non-Intel x86: on an AMD core it ran ~60-80 GFLOP/s where oneDNN ran 80-90 for
# these shapes. On Intel it is the other way round: on a Sapphire Rapids core (AVX-512) MKL runs every fwd/bwd
# shape of the base model at 150-185 GFLOP/s, while oneDNN matches it forward but runs the backward products at
# 70-160 (76 for the MLP's 3072->768 input gradient), and a base-config paired step (batch 2, 1 thread) took 8.2
# CPU-s on oneDNN vs 5.9 on MKL. Unknown vendors (non-x86) keep ``F.linear``. Same precision either way (IEEE fp32,
# no TF32/bf16); only the summation order differs. ``PMD_ONEDNN_LINEAR=0/1`` (or setting this) forces one side.
ONEDNN_LINEAR = (os.environ["PMD_ONEDNN_LINEAR"] == "1" if os.environ.get("PMD_ONEDNN_LINEAR") in ("0", "1")
                 else _cpu_vendor() not in ("GenuineIntel", ""))
_LINEAR_POINTWISE = (getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
                     if torch.backends.mkldnn.is_available() else None)  # a private op: F.linear where absent
_MIN_ROWS = 16


def _dnn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ w.T + b`` by oneDNN (any strides)."""
    return _LINEAR_POINTWISE(x, w, b, "none", [], "")


class _OneDnnLinear(torch.autograd.Function):
    """``F.linear`` whose forward and both backward products run on oneDNN's fp32 matmul."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return _dnn(x, w, b)

    @staticmethod
    def backward(ctx, gy: torch.Tensor):  # noqa: ANN001, ANN205
        x, w = ctx.saved_tensors
        g2 = gy.reshape(-1, gy.shape[-1])
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _dnn(g2, w.t()).view(x.shape)
        if ctx.needs_input_grad[1]:
            gw = _dnn(g2.t(), x.reshape(-1, x.shape[-1]).t())
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g2.sum(0)
        return gx, gw, gb


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear``; fp32 CPU tensors outside autocast and torch.compile take oneDNN (``ONEDNN_LINEAR``), unless
    they have only a few rows (the pooled heads), where oneDNN's per-call setup costs more than the product."""
    if (ONEDNN_LINEAR and _LINEAR_POINTWISE is not None and x.device.type == "cpu" and x.dtype == torch.float32
            and w.dtype == torch.float32 and x.dim() >= 2 and x.numel() >= _MIN_ROWS * x.shape[-1]
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()):
        return _OneDnnLinear.apply(x, w, b)
    return F.linear(x, w, b)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state_dict) computed by ``linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def gather_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``x`` (B,N,D) at per-sample row indices ``rows`` (B,R) → (B,R,D)."""
    return x.gather(1, rows[..., None].expand(-1, -1, x.shape[-1]))


def cls_rows(x: torch.Tensor) -> torch.Tensor:
    """Row index 0 for each sample of ``x``: (B,1), for passes that only read the CLS output."""
    return torch.zeros(x.shape[0], 1, dtype=torch.long, device=x.device)


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = Linear(width, 3 * width)
        self.out = Linear(width, width)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None,
                queries: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B,N,D) supplies keys/values (and queries unless ``queries`` (B,R,D), already layer-normed
        rows of ``x``, is given); returns (B,N,D) or (B,R,D)."""
        b, n, d = x.shape
        hd = d // self.heads
        mask = None if key_mask is None else key_mask[:, None, None, :]
        # Split along the projection's own (B,N,3,H,hd) layout, then transpose each: the backward stacks the three
        # gradients straight into that layout (one copy) instead of into (3,B,H,N,hd) and copying again to un-permute.
        if queries is None:
            q, k, v = (t.transpose(1, 2) for t in self.qkv(x).view(b, n, 3, self.heads, hd).unbind(2))
        else:
            w, bias = self.qkv.weight, self.qkv.bias
            q = linear(queries, w[:d], bias[:d]).view(b, -1, self.heads, hd).transpose(1, 2)
            k, v = (t.transpose(1, 2) for t in linear(x, w[d:], bias[d:]).view(b, n, 2, self.heads, hd).unbind(2))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, q.shape[2], d))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width, eps=eps)
        self.attn = SelfAttention(width, heads)
        self.ln2 = nn.LayerNorm(width, eps=eps)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(Linear(width, hidden), nn.GELU(), Linear(hidden, width))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """(B,N,D) → (B,N,D); with ``rows`` (B,R) indices, only those rows' outputs (B,R,D)."""
        h = self.ln1(x)
        if rows is None:
            x = x + self.attn(h, key_mask)
        else:
            x = gather_rows(x, rows) + self.attn(h, key_mask, gather_rows(h, rows))
        return x + self.mlp(self.ln2(x))


class Encoder(nn.Module):
    """A stack of pre-LN blocks; returns the last hidden states before and after the final LN."""

    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, eps) for _ in range(layers))
        self.ln = nn.LayerNorm(width, eps=eps)

    def trunk(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Every block but the last."""
        for blk in self.blocks[:-1]:
            x = blk(x, key_mask)
        return x

    def last(self, x: torch.Tensor, key_mask: torch.Tensor | None = None,
             rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The last block (at ``rows`` only, if given) and the final LN: (pre-LN, post-LN)."""
        if len(self.blocks):
            x = self.blocks[-1](x, key_mask, rows)
        elif rows is not None:
            x = gather_rows(x, rows)
        return x, self.ln(x)

    def split_last(self, x: torch.Tensor, key_mask: torch.Tensor | None, split: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two stacked batches in one trunk pass (bigger matmuls, one weight-gradient product per layer): the first
        ``split`` samples need only their CLS after the final LN (a contrastive pass), the others every row before it
        (the fusion encoder's input). Returns (CLS post-LN (split, D), pre-LN rows (B - split, N, D))."""
        x = self.trunk(x, key_mask)
        first, rest = (None, None) if key_mask is None else (key_mask[:split], key_mask[split:])
        head = x[:split]
        return self.last(head, first, cls_rows(head))[1][:, 0], self.last(x[split:], rest)[0]

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-LN, post-LN) hidden states of every row, or of ``rows`` (B,R) only."""
        return self.last(self.trunk(x, key_mask), key_mask, rows)
