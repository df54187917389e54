"""Shared bits for benchmarks: the example project (or the tests' tiny one) in a temp dir, the shared
Jigsaw comments, and a results table."""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "toxicity" / "graduate.yaml"
TINY = ROOT / "tests" / "fixtures" / "tiny"
JIGSAW = ROOT.parent / "shared" / "data" / "jigsaw" / "comments.csv"
console = Console(width=None if sys.stdout.isatty() else 200)  # a log file gets whole rows, not 80 folded columns


def example_copy(target: Path, example: Path = EXAMPLE, *, as_shipped: bool = False) -> Path:
    """An example spec with absolute paths, so its store and artifacts live in ``target``. Unless
    ``as_shipped``, without its ``clean:``, ``augment:`` and ``reviews:`` sections: each benchmark's flags
    (--prior, --per-item ...) add what it measures."""
    raw = yaml.safe_load(example.read_text())
    if not as_shipped:
        raw.pop("clean", None)
        raw.pop("augment", None)
        raw.pop("reviews", None)
    for d in raw["data"]:
        d["path"] = str((example.parent / d["path"]).resolve())
    for li in raw.get("label_imports", []):
        li["path"] = str((example.parent / li["path"]).resolve())
    for rv in raw.get("reviews", []):
        rv["path"] = str((example.parent / rv["path"]).resolve())
    for log in raw["teacher_logs"]:
        log["input"] = str((example.parent / log["input"]).resolve())
        log["output"] = str((example.parent / log["output"]).resolve())
    target.mkdir(parents=True, exist_ok=True)
    (target / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return target


def table(title: str, columns: list[str], rows: list[list[object]]) -> None:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, justify="left" if c == columns[0] else "right")
    for r in rows:
        t.add_row(*[str(x) for x in r])
    console.print(t)


def jigsaw_comments() -> list[str]:
    """Every comment of ../shared/data/jigsaw, in file order."""
    with JIGSAW.open(newline="", encoding="utf-8") as f:
        return [r["comment_text"] for r in csv.DictReader(f)]


def tiny_copy(prefix: str, **sections: Any) -> Path:
    """The tests' tiny project in a new temp dir, with graduate.yaml sections replaced (e.g. privacy=...)."""
    project = Path(tempfile.mkdtemp(prefix=prefix)) / "tiny"
    shutil.copytree(TINY, project, ignore=shutil.ignore_patterns(".graduate"))
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    raw.update(sections)
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return project
