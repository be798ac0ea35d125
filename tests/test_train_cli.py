"""`pmd train` command wiring, local image folders as a build input, the --data loop and the bench script (CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pmd.cli import main
from pmd.training.checkpoint import read_checkpoint
from pmd.training.data import open_build

REPO = Path(__file__).resolve().parent.parent
THREADS = os.environ.get("PMD_TEST_THREADS", "2")


@pytest.fixture(scope="module")
def photo_build(shared_data, tmp_path_factory):
    """The real Flickr8k + COCO photos as a build (the image_folder source's records, written without Spark)."""
    from train_helpers import folder_build

    root = shared_data / "image-text"
    return folder_build(tmp_path_factory.mktemp("photos") / "build", [root / "flickr8k", root / "coco2017"])


def test_image_folder_source_reads_flickr8k_and_coco_layouts(shared_data):
    from pmd.records import PairRecord
    from pmd.sources.registry import get_source

    root = shared_data / "image-text"
    recs = list(get_source("image_folder").parse_all([str(root / "flickr8k"), str(root / "coco2017")]))
    pairs = [r for r in recs if isinstance(r, PairRecord)]
    by = {d: [r for r in pairs if r.meta["dataset"] == d] for d in ("flickr8k", "coco")}
    assert len(by["flickr8k"]) == 445 and len({r.image.path for r in by["flickr8k"]}) == 89
    assert len({r.image.path for r in by["coco"]}) == 72 and len(by["coco"]) >= 5 * 72 - 5
    assert all(r.source == "image_folder" and Path(r.image.path).is_file() for r in pairs)
    assert len(recs) == len(pairs)  # every caption of these folders has its image: nothing dropped


def test_image_folder_without_a_known_layout_is_a_user_error(tmp_path):
    from pmd.errors import UserError
    from pmd.sources.registry import get_source

    with pytest.raises(UserError, match="neither a Flickr8k layout"):
        get_source("image_folder").units([str(tmp_path)])


def test_images_to_build_flag_points_to_pmd_build(tmp_path, capsys):
    assert main(["train", "--images-to-build", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "pmd build --config" in err and "image_folder" in err and not (tmp_path / "b").exists()


def test_cli_unknown_config_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--config", "nope", "--validate", str(tmp_path), "--out", str(tmp_path / "r")]) == 2


def test_train_on_build_writes_checkpoint_and_resumes(photo_build, tmp_path):
    args = ["train", "--config", "tiny", "--data", str(photo_build), "--out", str(tmp_path / "ck"),
            "--set", "steps=2", "--set", "data.batch_size=8", "--set", "data.workers=0", "--set", f"threads={THREADS}"]
    assert main(args) == 0
    state = read_checkpoint(tmp_path / "ck" / "last.pt")  # weights_only: tensors and plain types only
    assert state["step"] == 2 and state["data_epoch"] == 0 and state["data_batch"] == 2
    assert (tmp_path / "ck" / "tokenizer.json").is_file() and isinstance(state["tokenizer"], str)
    assert main(args) == 2  # refuses to overwrite without --resume
    assert main(args[:-2] + ["--set", "steps=3", "--set", f"threads={THREADS}", "--resume", "--verify-shards"]) == 0
    assert read_checkpoint(tmp_path / "ck" / "last.pt")["step"] == 3


def test_fewer_shards_than_consumers_is_the_loaders_error_not_duplication(photo_build, tmp_path, capsys):
    n = len(open_build(photo_build).shards)
    assert main(["train", "--config", "tiny", "--data", str(photo_build), "--out", str(tmp_path / "ck"),
                 "--set", "steps=1", "--set", f"data.workers={n + 1}"]) == 2
    assert "every consumer needs at least one shard" in capsys.readouterr().err


def test_a_shard_that_does_not_match_the_manifest_stops_training_once(photo_build, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(photo_build, bad)
    shard = open_build(bad).shards[0]
    shard.write_bytes(shard.read_bytes()[:-1024])
    assert main(["train", "--config", "tiny", "--data", str(bad), "--out", str(tmp_path / "ck"), "--set", "steps=1"]) == 2
    assert "do not match the manifest" in capsys.readouterr().err


def test_compare_bench_runs_both_implementations_on_cpu_with_tiny_sizes(photo_build):
    """The GPU command's code path (synthetic and from shards, pmd and HF) at tiny sizes."""
    pytest.importorskip("transformers")
    r = subprocess.run([sys.executable, str(REPO / "bench" / "trainer_compare.py"), "--device", "cpu", "--config", "tiny",
                        "--steps", "2", "--batch", "8", "--threads", THREADS, "--data", str(photo_build), "--workers", "0"],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.strip().splitlines()]
    runs = [x for x in rows if "impl" in x]
    assert {(x["impl"], x["data"]) for x in runs} == {(i, d) for i in ("pmd", "hf") for d in ("synthetic", str(photo_build))}
    for x in runs:
        assert x["samples_per_s"] > 0 and x["params"] > 0 and x["gflops_per_pair"] > 0 and x["batch"] == 8
        assert (x["data_wait_fraction"] == 0.0) == (x["data"] == "synthetic") and 0 <= x["data_wait_fraction"] < 1
    pmd, hf = (next(x for x in runs if x["impl"] == i and x["data"] == "synthetic") for i in ("pmd", "hf"))
    assert abs(pmd["params"] - hf["params"]) / hf["params"] < 0.1  # same widths and depths
    assert sum("ratio" in x for x in rows) == 2
