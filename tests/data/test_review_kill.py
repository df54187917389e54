"""`kill -9` of `graduate data review import` at any moment: the store holds every label of the file
or none of them, and the rerun stores each label exactly once."""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.store.schema import examples, labels
from teacher.live_teacher import cli_env

REVIEWERS = 30


def command(project: Path, review: Path) -> list[str]:
    return [sys.executable, "-m", "graduate", "data", "review", "import", str(project), str(review)]


def human(project: Path) -> list[tuple[int, str, str]]:
    proj = Project.load(project)
    with proj.engine.connect() as conn:
        rows = conn.execute(select(labels.c.example_id, labels.c.labeller, labels.c.label).where(labels.c.kind == "human")).all()
    proj.engine.dispose()
    return [tuple(r) for r in rows]


def test_sigkill_mid_review_import_leaves_all_labels_or_none_and_the_rerun_adds_each_once(trained_copy: Path, tmp_path: Path) -> None:
    proj = Project.load(trained_copy)
    with proj.engine.connect() as conn:
        items = conn.execute(select(examples.c.source, examples.c.external_id).where(examples.c.source == proj.spec.train.source)).all()
    proj.engine.dispose()
    assert len(items) > 100
    review = tmp_path / "review.csv"
    with review.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["source", "external_id", "corrected_label", "reviewer"])
        for i in range(REVIEWERS):
            for j, (src, ext) in enumerate(items):
                w.writerow([src, ext, ["ok", "bad"][(i + j) % 2], f"reviewer {i}"])
    want = REVIEWERS * len(items)

    reference = tmp_path / "reference"
    shutil.copytree(trained_copy, reference)
    t0 = time.perf_counter()
    clean = subprocess.run(command(reference, review), env=cli_env(), capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - t0
    assert clean.returncode == 0, clean.stderr
    expected = sorted(human(reference))
    assert len(expected) == want

    # Kills at shares of the clean run's time; a run that ends before its kill (the machine's load
    # fell) is undone from a pristine copy and the later kills aim within the shorter run.
    pristine = tmp_path / "pristine"
    shutil.copytree(trained_copy, pristine)
    killed = 0
    for share in (0.5, 0.7, 0.8, 0.9, 0.95, 0.5, 0.7, 0.3):
        t0 = time.perf_counter()
        proc = subprocess.Popen(command(trained_copy, review), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(share * took)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(timeout=60)
        got = human(trained_copy)
        assert len(got) in (0, want), f"a kill at {share:.0%} of the import left {len(got)} of {want} labels"
        if got:  # this run got through before its kill: start again from no labels, aiming earlier
            took = min(took, time.perf_counter() - t0)
            shutil.rmtree(trained_copy)
            shutil.copytree(pristine, trained_copy)
        elif killed >= 2:
            break
    assert killed >= 2, "the imports ended before the kills: give the file more rows"

    rerun = subprocess.run(command(trained_copy, review), env=cli_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    got = human(trained_copy)
    assert sorted(got) == expected
    assert Counter((ex, who) for ex, who, _ in got).most_common(1)[0][1] == 1
    again = subprocess.run(command(trained_copy, review), env=cli_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert sorted(human(trained_copy)) == expected  # a second import of the same file adds nothing
