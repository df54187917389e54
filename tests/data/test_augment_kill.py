"""`kill -9` of `graduate augment --kind counterfactual` at any moment: the store holds all of the
copies (each with its lineage and derived label) or none, and the rerun stores exactly what an
uninterrupted run stores, each once."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml
from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.store.schema import examples, labels
from teacher.live_teacher import cli_env

TERMS = ["you", "they", "we", "people", "he", "she"]


def command(project: Path) -> list[str]:
    return [sys.executable, "-m", "graduate", "augment", str(project), "--kind", "counterfactual"]


def made(project: Path) -> list[tuple[str, dict | None, list[str]]]:
    """(text, lineage, derived labels) of every item graduate made."""
    proj = Project.load(project)
    with proj.engine.connect() as conn:
        rows = conn.execute(select(examples.c.id, examples.c.text, examples.c.lineage).where(examples.c.source == "augment")).all()
        derived: dict[int, list[str]] = {}
        for ex, lab in conn.execute(select(labels.c.example_id, labels.c.label).where(labels.c.kind == "derived")):
            derived.setdefault(ex, []).append(lab)
    proj.engine.dispose()
    return [(r.text, r.lineage, derived.get(r.id, [])) for r in rows]


def _terms(project: Path) -> None:
    path = project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["augment"] = {"term_lists": {"identity": TERMS}, "counterfactual": {"per_item": 5}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_sigkill_at_any_moment_leaves_all_copies_or_none_and_the_rerun_completes(trained_copy: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(trained_copy, reference)
    for p in (trained_copy, reference):
        _terms(p)
    t0 = time.perf_counter()
    clean = subprocess.run(command(reference), env=cli_env(), capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - t0
    assert clean.returncode == 0, clean.stderr
    want = made(reference)
    assert len(want) > 50 and all(lin and lin["method"] == "counterfactual" and labs for _, lin, labs in want)

    killed = 0
    for share in (0.3, 0.55, 0.7, 0.8, 0.9, 0.97):
        began = time.perf_counter()
        proc = subprocess.Popen(command(trained_copy), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(share * took)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        else:  # faster than the clean run (the machine's load fell): aim the next kills within this one's time
            took = min(took, time.perf_counter() - began)
        proc.wait(timeout=60)
        got = made(trained_copy)
        assert len(got) in (0, len(want)), f"a kill at {share:.0%} of the run left {len(got)} of {len(want)} copies"
        assert all(lin and len(labs) == 1 for _, lin, labs in got)  # never a copy without lineage or label
    assert killed >= 3, "the runs ended before the kills: make the term lists longer"

    rerun = subprocess.run(command(trained_copy), env=cli_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    got = made(trained_copy)
    assert sorted(t for t, _, _ in got) == sorted(t for t, _, _ in want)
    assert Counter(t for t, _, _ in got).most_common(1)[0][1] == 1
    assert sorted((t, labs[0]) for t, _, labs in got) == sorted((t, labs[0]) for t, _, labs in want)
