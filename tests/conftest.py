"""Test-wide fixtures: the no-network guard and the path to the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pmd import netguard

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("PMD_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("PMD_NETGUARD", "1")


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    """Fail any test that opens a connection to a non-loopback address."""
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
