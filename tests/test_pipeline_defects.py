"""Issue 13's defects in the main path, each fixed and kept fixed: predict after a curve uses the
trained student, ladders and curves respect frozen test sets, a crashed ladder marks its run
failed, a copied project predicts, and error messages keep bracketed words."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from graduate.errors import StudentError, TestSetChangedError
from graduate.experiments.curve import learning_curve
from graduate.experiments.ladder import climb_ladder
from graduate.pipeline.project import Project
from graduate.store.runs import get_runs


def graduate(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"}
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=300, env={**env, "COLUMNS": "200"})


def edit_gold_of_one_test_item(project: Path) -> None:
    path = project / "comments.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
        fields = list(rows[0])
    row = next(r for r in rows if "test.balanced" in r["subsets"])
    row["is_bad"] = "0" if row["is_bad"] == "1" else "1"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def test_predict_after_a_curve_uses_the_trained_student(trained_copy: Path) -> None:
    proj = Project.load(trained_copy)
    _, before = proj.best_student()
    learning_curve(proj, kind="tfidf-logreg", fractions=[0.5, 0.75, 1.0], seeds=[0, 1, 2])
    _, after = Project.load(trained_copy).best_student()
    assert after.id == before.id and after.name == "tfidf-logreg"  # never "tfidf-logreg@100%/seed2"


def test_a_ladder_or_curve_on_a_changed_frozen_test_set_is_refused(trained_copy: Path) -> None:
    edit_gold_of_one_test_item(trained_copy)
    proj = Project.load(trained_copy)
    with pytest.raises(TestSetChangedError):
        climb_ladder(proj, kinds=["majority"])
    with pytest.raises(TestSetChangedError):
        learning_curve(proj, kind="majority", fractions=[0.5, 1.0], seeds=[0])


def test_a_crashed_ladder_leaves_no_run_running(tiny_project: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    spec["students"].append({"kind": "encoder", "params": {"base_model": str(tmp_path / "no-such-encoder")}})
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    proj = Project.load(tiny_project)
    with pytest.raises(StudentError):
        climb_ladder(proj, kinds=["majority", "encoder"])
    runs = get_runs(proj.engine)
    assert runs and all(r.status in ("finished", "failed") for r in runs), [(r.kind, r.name, r.status) for r in runs]
    assert any(r.kind == "evaluate" and r.status == "failed" for r in runs)


def test_a_copied_project_predicts_from_its_own_students(trained_copy: Path, tmp_path: Path) -> None:
    copy = tmp_path / "moved"
    shutil.copytree(trained_copy, copy)
    shutil.rmtree(trained_copy)  # the original is gone: nothing may point back at it
    out = tmp_path / "out.csv"
    res = graduate("predict", str(copy), "--input", str(copy / "comments.csv"), "--text-column", "comment_text", "--output", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and {"label", "p_ok", "p_bad"} <= set(rows[0])


def test_an_error_naming_brackets_keeps_them(tiny_project: Path) -> None:
    spec = tiny_project / "graduate.yaml"
    spec.write_text(spec.read_text().replace("path: ./comments.csv", "path: ./comments[serve].csv"))
    res = graduate("check", str(tiny_project))
    assert res.returncode == 2 and "comments[serve].csv" in res.stderr, res.stderr
