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


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/tiny after `graduate run`, once per session (~5 s); copy it before writing
    (see ``trained_copy``): its store is shared by the tests that read it."""
    from graduate.pipeline.project import Project

    dst = tmp_path_factory.mktemp("trained") / "tiny"
    shutil.copytree(FIXTURES / "tiny", dst, ignore=shutil.ignore_patterns(".graduate"))
    proj = Project.load(dst)
    proj.run()
    proj.engine.dispose()  # checkpoints SQLite's WAL, so a copy of the directory holds everything
    return dst


@pytest.fixture
def trained_copy(trained_tiny: Path, tmp_path: Path) -> Path:
    """A private copy of ``trained_tiny``, store included (its students' artifacts stay shared)."""
    dst = tmp_path / "tiny"
    shutil.copytree(trained_tiny, dst)
    return dst


@pytest.fixture(autouse=True)
def _no_store_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's GRADUATE_STORE_URL must not leak into tests.
    monkeypatch.delenv("GRADUATE_STORE_URL", raising=False)
