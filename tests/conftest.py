"""Test-wide fixtures: the no-network guard and the path to the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pmd import netguard

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("PMD_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Every Python started from the test process (Spark's python workers, img2dataset's and
# multiprocessing's spawned children, subprocesses) installs the guard at startup: set before any
# SparkSession's JVM starts, so that it inherits the environment.
netguard.cover_children()


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    """Fail any test that resolves a public name or opens a connection to a non-loopback address."""
    netguard.install()
    yield
    netguard.uninstall()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real public data); tests that need it are skipped loudly only if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; clone with ../shared beside the repo "
                    "or set PMD_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """The embedded sample, generated once per test session (images served by ``image_server``)."""
    from pmd.sample.generate import generate_sample
    from pmd.sample.server import free_port

    out = tmp_path_factory.mktemp("sample")
    port = free_port()
    generate_sample(out, seed=0, base_url=f"http://127.0.0.1:{port}")
    (out / ".port").write_text(str(port))
    return out


@pytest.fixture(scope="session")
def image_server(sample_dir):
    """A loopback server for ``sample_dir``'s images on the port its URLs name."""
    from pmd.sample.server import ImageServer

    port = int((sample_dir / ".port").read_text())
    with ImageServer(sample_dir, port=port) as server:
        yield server


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory) -> Path:
    """The PMD build of the embedded sample (Spark local mode), built once per test session."""
    from pmd.spark.pairs.run import build_embedded_sample

    return build_embedded_sample(tmp_path_factory.mktemp("sample_build"))


@pytest.fixture(scope="session")
def interleaved_sample_build(tmp_path_factory) -> Path:
    """The interleaved build of the embedded sample WARC, built once per test session."""
    from pmd.interleaved.run import build_embedded_sample

    return build_embedded_sample(tmp_path_factory.mktemp("interleaved_build"))
