"""graduate synth against the real local teacher (qwen2.5-0.5b behind llama.cpp's server), small n:
the generation request goes through the same client and call log, its list is read, what it
wrote is labelled by the same teacher, and a rerun sends nothing."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.store.schema import examples, teacher_calls
from teacher.live_teacher import cli_env
from teacher.test_local_teacher import make_local


def test_synth_with_the_local_teacher_writes_labels_and_caches(tiny_project: Path) -> None:
    make_local(tiny_project)
    with (tiny_project / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    train = [r for r in rows if "train" in r["subsets"] and len(r["comment_text"]) < 300][:8]
    with (tiny_project / "eight.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(train)
    Project.load(tiny_project).load_data()  # the comments are the pool's items before they are labelled
    labelled = subprocess.run(
        [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(tiny_project / "eight.csv"), "--id-column", "id"],
        capture_output=True, text=True, env=cli_env(), timeout=600,
    )  # fmt: skip
    assert labelled.returncode == 0, labelled.stderr
    proj = Project.load(tiny_project)
    report = proj.synth(target=None, n=3, seeds=3)
    assert report.calls == 1 and report.calls_sent == 1 and report.calls_failed == 0
    assert report.generated == report.label_shaped + report.stored_already + report.near_pool + report.near_each_other + report.unlabelled + report.added + max(0, report.generated - 3)
    with proj.engine.connect() as conn:
        prompts = [r.request["messages"][-1]["content"] for r in conn.execute(select(teacher_calls.c.request).where(teacher_calls.c.source == "live"))]
        made = conn.execute(select(examples.c.lineage).where(examples.c.source == "augment")).scalars().all()
    assert sum("Answer with a numbered list" in p for p in prompts) == 1
    assert len(made) == report.added and all(m["method"] == "synth" and len(m["seeds"]) == 3 for m in made)
    again = proj.synth(target=None, n=3, seeds=3)
    assert again.calls_sent == 0 and again.calls_cached == 1 and again.added == 0
