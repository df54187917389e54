"""Serving tests: a private copy of the trained tiny project, served for real on 127.0.0.1
(uvicorn in a thread, or `graduate serve` as a subprocess), with the test API key set."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers.graduate_server import KEY


@pytest.fixture
def served(trained_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRADUATE_API_KEYS", KEY)
    return trained_copy
