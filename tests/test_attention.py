"""``SelfAttention`` equals multi-head attention written out by hand (softmax of scaled dot products, heads as
contiguous 64-wide slices of the fused ``[q; k; v]`` projection), for all rows and for a subset of query rows, with and
without a key mask: pins the layout the fused QKV projection is split by."""

from __future__ import annotations

import math

import pytest
import torch

from pmd.training.attention import SelfAttention


def _reference(att: SelfAttention, x, key_mask, rows):
    b, n, d = x.shape
    h = att.heads
    hd = d // h
    qkv = x @ att.qkv.weight.t() + att.qkv.bias
    q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
    if rows is not None:
        q = q.gather(1, rows[..., None].expand(-1, -1, d))
    outs = []
    for i in range(h):
        sl = slice(i * hd, (i + 1) * hd)
        s = q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(hd)
        if key_mask is not None:
            s = s.masked_fill(~key_mask[:, None, :], float("-inf"))
        outs.append(s.softmax(-1) @ v[..., sl])
    return torch.cat(outs, -1) @ att.out.weight.t() + att.out.bias


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("subset", [False, True])
def test_self_attention_equals_written_out_multi_head_attention(padded: bool, subset: bool):
    torch.manual_seed(0)
    att = SelfAttention(width=48, heads=4)
    for p in att.parameters():
        torch.nn.init.normal_(p, std=0.2)
    b, n = 3, 20
    x = torch.randn(b, n, 48, requires_grad=True)
    key_mask = None
    if padded:
        key_mask = torch.ones(b, n, dtype=torch.bool)
        key_mask[1, 12:] = False
        key_mask[2, 5:] = False
    rows = torch.tensor([[0, 3, 7], [0, 1, 11], [4, 2, 0]]) if subset else None
    queries = None if rows is None else x.gather(1, rows[..., None].expand(-1, -1, 48))
    got = att(x, key_mask, queries)
    want = _reference(att, x, key_mask, rows)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    gy = torch.randn_like(got)
    params = [x, *att.parameters()]
    for a, c in zip(torch.autograd.grad(got, params, gy), torch.autograd.grad(want, params, gy)):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)
