"""Shared fixtures: tiny real data copied per test, never mocks of our own code."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    """A copy of tests/fixtures/tiny: 161 real comments and 366 recorded teacher calls."""
    dst = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "tiny", dst, ignore=shutil.ignore_patterns(".graduate"))
    return dst


@pytest.fixture(autouse=True)
def _no_store_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's GRADUATE_STORE_URL must not leak into tests.
    monkeypatch.delenv("GRADUATE_STORE_URL", raising=False)
