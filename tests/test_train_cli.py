"""`pmd train` command wiring, the real-photo build path, the --data loop and the bench script (CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pmd.cli import main
from pmd.training.data import iter_shard, open_build

REPO = Path(__file__).resolve().parent.parent
THREADS = os.environ.get("PMD_TEST_THREADS", "2")


@pytest.fixture(scope="module")
def photo_build(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("photos")
    root = shared_data / "image-text"
    from pmd.training.realdata import folders_to_build

    info = folders_to_build(out / "build", flickr8k=root / "flickr8k", coco=root / "coco2017", shard_size=100)
    return out / "build", info


def test_images_to_build_turns_flickr8k_and_coco_into_a_checked_build(photo_build):
    build_dir, info = photo_build
    counts = info["counts"]
    assert counts["flickr8k/kept"] == 445 and info["images"] == 89 + 72
    assert counts["coco/kept"] >= 5 * 72 - 5  # COCO has ~5 captions per image
    b = open_build(build_dir)
    assert sum(b.samples) == counts["flickr8k/kept"] + counts["coco/kept"]
    key, jpg, text = next(iter_shard(b.shards[0]))
    from PIL import Image
    import io
    assert min(Image.open(io.BytesIO(jpg)).size) <= 256 and len(text) > 10


def test_cli_unknown_config_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--config", "nope", "--validate", str(tmp_path), "--out", str(tmp_path / "r")]) == 2


def test_train_on_build_writes_checkpoint_and_resumes(photo_build, tmp_path):
    build_dir, _ = photo_build
    args = ["train", "--config", "tiny", "--data", str(build_dir), "--out", str(tmp_path / "ck"),
            "--set", "steps=2", "--set", "data.batch_size=8", "--set", "data.workers=0", "--set", f"threads={THREADS}"]
    assert main(args) == 0
    import torch

    state = torch.load(tmp_path / "ck" / "last.pt", weights_only=False)
    assert state["step"] == 2 and state["data_position"] == 2 and (tmp_path / "ck" / "tokenizer.json").is_file()
    assert main(args) == 2  # refuses to overwrite without --resume
    assert main(args[:-2] + ["--set", "steps=3", "--set", f"threads={THREADS}", "--resume"]) == 0
    assert torch.load(tmp_path / "ck" / "last.pt", weights_only=False)["step"] == 3


def test_bench_script_runs_on_cpu_with_tiny_config():
    r = subprocess.run([sys.executable, str(REPO / "bench" / "trainer_gpu.py"), "--device", "cpu", "--config", "tiny",
                        "--steps", "3", "--batch", "8", "--threads", THREADS],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["steps"] == 3 and res["batch"] == 8 and res["samples_per_s"] > 0 and res["data"] == "synthetic"
    assert res["data_wait_fraction"] == 0.0 and res["last_loss"] > 0


def test_bench_streams_a_real_build_through_the_loader(photo_build):
    import importlib.util

    spec = importlib.util.spec_from_file_location("trainer_gpu", REPO / "bench" / "trainer_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    build_dir, _ = photo_build
    res = bench.main(["--device", "cpu", "--config", "tiny", "--steps", "2", "--batch", "8", "--threads", THREADS,
                      "--data", str(build_dir), "--workers", "0"])
    assert res["data"] == str(build_dir) and res["samples_per_s"] > 0 and 0.0 < res["data_wait_fraction"] < 1.0
