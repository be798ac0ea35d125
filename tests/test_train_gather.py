"""The GC all-gather with gradients: 2 gloo processes equal one process on the concatenated batch."""

from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp

from pmd.training.losses import contrastive_loss
from pmd.training.distributed import free_loopback_port


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(8, 16, generator=g)
    txt = torch.randn(8, 16, generator=g)
    return img, txt


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    img, txt = _data()
    b = img.shape[0] // world
    li = img[rank * b:(rank + 1) * b].clone().requires_grad_(True)
    lt = txt[rank * b:(rank + 1) * b].clone().requires_grad_(True)
    scale = torch.tensor(2.0, requires_grad=True)
    loss = contrastive_loss(torch.nn.functional.normalize(li, dim=-1), torch.nn.functional.normalize(lt, dim=-1), scale)
    loss.backward()
    torch.save({"loss": loss.detach(), "gi": li.grad, "gt": lt.grad, "gs": scale.grad}, f"{out_dir}/rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


def test_gathered_loss_and_gradients_equal_single_process(tmp_path):
    world = 2
    mp.start_processes(_worker, args=(world, free_loopback_port(), str(tmp_path)), nprocs=world, join=True,
                       start_method="spawn")
    parts = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]

    img, txt = _data()
    img.requires_grad_(True)
    txt.requires_grad_(True)
    scale = torch.tensor(2.0, requires_grad=True)
    ref = contrastive_loss(torch.nn.functional.normalize(img, dim=-1), torch.nn.functional.normalize(txt, dim=-1), scale)
    ref.backward()

    # DDP averages gradients over ranks, so the objective is the mean of the per-rank losses.
    mean_loss = sum(p["loss"] for p in parts) / world
    assert float(mean_loss) == pytest.approx(float(ref.detach()), rel=1e-5)
    gi = torch.cat([p["gi"] for p in parts]) / world
    gt = torch.cat([p["gt"] for p in parts]) / world
    assert torch.allclose(gi, img.grad, atol=1e-6)
    assert torch.allclose(gt, txt.grad, atol=1e-6)
    assert float(sum(p["gs"] for p in parts) / world) == pytest.approx(float(scale.grad), rel=1e-5)
    # Without the gradient path through the gather the columns' gradients would be missing.
    assert gi.abs().sum() > 0 and not torch.allclose(parts[0]["gi"], torch.zeros_like(parts[0]["gi"]))
