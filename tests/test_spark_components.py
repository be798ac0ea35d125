"""Spark layer: connected components and the Spark image dedup equal their pure references."""

from __future__ import annotations

import random

import pytest

from pmd.download import canonical_images

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    from pmd.spark.session import spark_session

    return spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "2"})


def _components_reference(edges, nodes):
    parent = {n: n for n in nodes}
    for a, b in edges:
        parent.setdefault(a, a)
        parent.setdefault(b, b)

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups = {}
    for n in parent:
        groups.setdefault(find(n), []).append(n)
    return {n: min(g) for g in groups.values() for n in g}


def test_components_of_chains_cycles_and_isolated_nodes(spark):
    from pmd.spark.components import connected_components

    rng = random.Random(7)
    # a long chain in shuffled order (the worst case for naive label propagation), a cycle, a star,
    # random small groups, self-loops and duplicate edges, and nodes with no edges at all
    chain = list(range(100, 132))
    rng.shuffle(chain)
    edges = list(zip(chain, chain[1:]))
    edges += [(200 + i, 200 + (i + 1) % 9) for i in range(9)]
    edges += [(300, 300 + i) for i in range(1, 12)]
    for _ in range(30):
        a, b = rng.randrange(400, 460), rng.randrange(400, 460)
        edges.append((a, b))
    edges += [(7, 7), (100, 101), (101, 100), (201, 200)]
    isolated = [1, 2, 3, 7]
    df = spark.createDataFrame(edges, "src long, dst long")
    nodes = spark.createDataFrame([(n,) for n in isolated], "node long")
    got = {r["node"]: r["component"] for r in connected_components(df, nodes).collect()}
    want = _components_reference([e for e in edges if e[0] != e[1]], isolated)
    assert got == want


def test_components_on_string_ids_pick_the_smallest(spark):
    from pmd.spark.components import connected_components

    df = spark.createDataFrame([("b", "c"), ("c", "d"), ("x", "a"), ("d", "x"), ("q", "r")], "src string, dst string")
    got = {r["node"]: r["component"] for r in connected_components(df).collect()}
    assert got == {k: "a" for k in "abcdx"} | {"q": "q", "r": "q"}


def test_components_bound_is_enforced(spark):
    from pmd.spark.components import ComponentsDidNotConverge, connected_components

    chain = [(i, i + 1) for i in range(64)]
    with pytest.raises(ComponentsDidNotConverge):
        connected_components(spark.createDataFrame(chain, "src long, dst long"), max_rounds=1).collect()


def _random_images(seed: int, n: int):
    """Rows ``(image_key, sha256, phash, priority)`` with exact duplicates, equal and near dHashes,
    dHash chains (each step 1-3 bits: ends further apart than the threshold), failed images."""
    rng = random.Random(seed)
    rows = []
    bases = [rng.getrandbits(64) for _ in range(6)]
    for i in range(n):
        key = f"img{rng.randrange(10**6):06d}-{i}"
        if rng.random() < 0.1:
            rows.append((key, None, None, rng.randrange(4)))
            continue
        sha = f"sha{rng.randrange(n // 2)}"
        base = rng.choice(bases)
        h = base
        for _ in range(rng.randrange(4)):  # walk: a chain of small steps away from the base
            for _ in range(rng.randrange(1, 4)):
                h ^= 1 << rng.randrange(64)
        if rng.random() < 0.2:
            h = rng.getrandbits(64)
        rows.append((key, sha, h - (1 << 64) if h >= 1 << 63 else h, rng.randrange(4)))
    return rows


@pytest.mark.parametrize("use_phash,max_distance", [(False, 0), (True, 0), (True, 4)])
def test_spark_image_dedup_equals_canonical_images(spark, use_phash, max_distance):
    from pmd.spark.pairs.dedup_images import canonical_keys

    rows = _random_images(seed=max_distance + 10 * use_phash, n=300)
    df = spark.createDataFrame(rows, "image_key string, sha256 string, phash long, priority int")
    got = {r["image_key"]: r["canonical"] for r in canonical_keys(df, use_phash, max_distance).collect()}
    want = canonical_images(rows, max_distance=max_distance, use_phash=use_phash)
    # images without sha256 are their own canonical image (the Spark map leaves them out: coalesce)
    assert {k: got.get(k, k) for k in want} == want
    assert set(got) <= set(want)
    merged = sum(1 for k, v in want.items() if k != v)
    assert merged > 10  # the data really has groups (and with dHash, chains) to merge


def test_url_requests_as_a_dataframe_equal_the_pure_reference(spark):
    import pyarrow as pa

    from pmd.pairs.download import url_requests
    from pmd.records import Crop, ImageRef
    from pmd.spark.pairs.download import url_images_df, url_requests_df

    refs = [ImageRef(url="http://x.test/1.jpg"), ImageRef(url="http://x.test/2.jpg", crop=Crop(1, 2, 30, 40)),
            ImageRef(url="http://x.test/2.jpg", crop=Crop(5, 5, 10, 10)), ImageRef(url="http://x.test/2.jpg"),
            ImageRef(url="http://x.test/3.jpg", crop=Crop(0, 0, 8, 8))]
    rows = [{"image_key": r.key(), "image_url": r.url, "image_path": None,
             **{f"crop_{k}": getattr(r.crop, k) if r.crop else None for k in ("x", "y", "width", "height")}}
            for r in refs]
    table = pa.Table.from_pylist(rows)
    want_req, want_crops = url_requests(table)
    df = spark.createDataFrame(table.to_pandas()).selectExpr(
        "image_key", "image_url", "image_path", *[f"CAST(crop_{k} AS INT) AS crop_{k}" for k in ("x", "y", "width", "height")])
    fetch = url_images_df(df)
    got_req = sorted((r["image_key"], r["url"]) for r in url_requests_df(fetch).collect())
    assert got_req == sorted(zip(*want_req.to_pydict().values()))
    got_crops = sorted(tuple(r) for r in fetch.where("crop_width IS NOT NULL").collect())
    assert got_crops == sorted(tuple(r.values()) for r in want_crops.to_pylist())
