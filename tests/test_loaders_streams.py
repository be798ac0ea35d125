"""Unimodal streams (image-only, text-only from shards / text files / JSON lines / Parquet) and mixtures."""

from __future__ import annotations

import gzip
import json
import warnings
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pmd.errors import UserError
from pmd.loaders import CorruptSampleWarning, collate, image_pipeline, mixture, text_pipeline, train_wordpiece
from pmd.loaders.synthetic import WORDS, write_pair_build


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece([" ".join(WORDS)], vocab_size=200)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_pair_build(tmp_path_factory.mktemp("pairs"), shards=2, per_shard=4, image_px=40)


def test_image_stream_from_pair_shards(build):
    samples = list(image_pipeline(build, image_size=24, shuffle=False))
    assert len(samples) == 8
    assert set(samples[0]) == {"image", "key"} and samples[0]["image"].shape == (3, 24, 24)


def test_text_stream_from_pair_captions(build, tokenizer):
    texts = [s["text"] for s in text_pipeline(build, tokenizer=tokenizer, max_text_len=10, shuffle=False)]
    pairs = pq.read_table(build / "shards" / "pairs-000000.parquet").column("text").to_pylist()
    assert texts[:4] == pairs


def test_text_stream_from_text_file_splits_records_across_workers(tmp_path, tokenizer):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a cat sits\n\nthe dog\nbirds fly over the river\npeople walk\nboats drift\n")
    ds = text_pipeline(str(corpus), tokenizer=tokenizer, max_text_len=6, shuffle=False)
    samples = list(ds)
    assert [s["text"] for s in samples] == ["a cat sits", "the dog", "birds fly over the river", "people walk", "boats drift"]
    assert samples[0]["key"] == "corpus:0" and samples[1]["key"] == "corpus:2"
    assert samples[2]["input_ids"].shape == (6,) and samples[2]["attention_mask"].tolist() == [1] * 6
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)  # 1 file, 2 workers: split records
    got = sorted(s["text"] for s in loader)
    assert got == sorted(s["text"] for s in samples)


def test_text_stream_from_jsonl_gz_and_parquet(tmp_path, tokenizer):
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        for t in ["a cat", "the dog"]:
            f.write(json.dumps({"body": t}) + "\n")
        f.write(json.dumps({"other": 1}) + "\n")
    pq.write_table(pa.table({"body": ["birds fly", None, "people walk"]}), tmp_path / "c.parquet")
    ds = text_pipeline([str(tmp_path / "c.jsonl.gz"), str(tmp_path / "c.parquet")], tokenizer=tokenizer, field="body",
                       shuffle=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        texts = [s["text"] for s in ds]
    assert texts == ["a cat", "the dog", "birds fly", "people walk"]
    assert ds.errors.as_dict()["bad_text"] == 2
    assert sum(issubclass(w.category, CorruptSampleWarning) for w in caught) == 2
    missing = text_pipeline(str(tmp_path / "c.parquet"), tokenizer=tokenizer, field="nope", shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(missing) == []
    assert missing.errors.as_dict()["shard"] == 1


def stream(name, n):
    return [{"x": torch.tensor([i]), "src": name} for i in range(n)]


def test_round_robin_mixture_of_batches():
    mix = mixture({"pairs": stream("p", 6), "images": stream("i", 6), "text": stream("t", 6)}, batch_size=2)
    batches = list(mix)
    assert [b["stream"] for b in batches] == ["pairs", "images", "text"] * 3
    assert batches[0]["x"].tolist() == [[0], [1]] and batches[3]["x"].tolist() == [[2], [3]]


def test_weighted_mixture_follows_weights_and_is_seeded():
    def draw(seed):
        mix = mixture([[{"i": i} for i in range(2000)], [{"i": i} for i in range(2000)]], weights=[3, 1], seed=seed)
        return [s["stream"] for _, s in zip(range(2000), mix)]

    counts = Counter(draw(0))
    assert 1400 < counts["stream0"] < 1600
    assert draw(0) == draw(0) and draw(0) != draw(1)


def test_mixture_stops_or_restarts_when_a_stream_runs_out():
    assert len(list(mixture([stream("a", 4), stream("b", 1)]))) == 3  # a0 b0 a1, then b is empty
    mix = mixture([stream("a", 4), stream("b", 1)], restart=True)
    first = [s["src"] for _, s in zip(range(8), mix)]
    assert first == ["a", "b"] * 4
    with pytest.raises(UserError, match="weights"):
        mixture([stream("a", 1)], weights=[1, 2])


def test_mixture_of_real_streams_through_a_dataloader(build, tokenizer):
    mix = mixture(
        {"pairs": image_pipeline(build, image_size=16), "text": text_pipeline(build, tokenizer=tokenizer, max_text_len=8)},
        batch_size=2,
    )
    batches = list(torch.utils.data.DataLoader(mix, batch_size=None, num_workers=2))
    assert Counter(b["stream"] for b in batches) == {"pairs": 4, "text": 4}
    assert all(b["image"].shape == (2, 3, 16, 16) for b in batches if b["stream"] == "pairs")


def test_collate_types():
    batch = collate([{"a": torch.ones(2), "b": 1, "c": True, "d": "x"}, {"a": torch.zeros(2), "b": 2, "c": False, "d": "y"}])
    assert batch["a"].shape == (2, 2) and batch["b"].tolist() == [1, 2]
    assert batch["c"].dtype == torch.bool and batch["d"] == ["x", "y"]
