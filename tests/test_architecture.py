"""The layers of STYLE.md, enforced: `lint-imports` with the contracts in .importlinter. A new
import that crosses a layer upward fails here; the known ones are listed there, each with why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def test_store_does_not_load_the_facade():
    # `graduate.store` sits below everything: importing it must not import the pipeline (the Project facade).
    code = "import sys, graduate.store.runs; print('graduate.pipeline' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr
