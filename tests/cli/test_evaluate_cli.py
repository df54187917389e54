"""`graduate evaluate`, `graduate errors` and `graduate report` as a user runs them, in a subprocess."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from eval_project import add_evaluation


def graduate(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"}
    env["COLUMNS"] = "250"
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=300, env=env)


def test_evaluate_guards_a_deployment_and_errors_export_the_review_queue(tiny_project: Path, tmp_path: Path):
    add_evaluation(tiny_project)
    # nothing trained yet: a clear error, not a traceback
    early = graduate("evaluate", str(tiny_project))
    assert early.returncode == 2 and "not trained yet; run `graduate run" in early.stderr

    run = graduate("run", str(tiny_project))
    assert run.returncode == 0, run.stderr  # run reports the gates but does not fail on them
    assert "4 of 5 gate checks passed" in run.stdout
    assert (tiny_project / ".graduate" / "report.html").exists()

    failing = graduate("evaluate", str(tiny_project))
    assert failing.returncode == 1, failing.stderr
    out = failing.stdout
    assert "FAIL" in out and "4 of 5 gate checks passed" in out and "a gate failed" in failing.stderr
    a = json.loads((tiny_project / ".graduate" / "evaluation.json").read_text())
    acc = a["test_sets"]["test.balanced"]["students"]["tfidf-logreg"]["accuracy"]
    teacher = a["test_sets"]["test.balanced"]["teacher"]["accuracy"]
    failed = [g for g in a["gates"] if not g["passed"]]
    assert [g["detail"] for g in failed] == [f"student[tfidf-logreg].accuracy = {acc:.4g} >= teacher.accuracy ({teacher:.4g}) + 0.5 = {teacher + 0.5:.4g}"]
    assert "student[tfidf-logreg].accuracy = " in out  # names in brackets are printed, not eaten as markup
    assert "identity-term bias: bias.original vs bias.fuzzed" in out and "cost and latency" in out
    # the student the gates judge, and why it was picked (a retrain can change it), as `graduate run` says it
    why = a["model_selection"]["why"]
    assert f"best student: {a['best_student']} ({why})" in " ".join(out.split())

    spec_path = tiny_project / "graduate.yaml"
    raw = yaml.safe_load(spec_path.read_text())
    raw["gates"] = [g for g in raw["gates"] if "+ 0.5" not in g]
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    passing = graduate("evaluate", str(tiny_project), "--no-report")
    assert passing.returncode == 0, passing.stderr + passing.stdout
    assert "4 of 4 gate checks passed" in passing.stdout

    errors = graduate("errors", str(tiny_project), "--out", str(tmp_path / "queue"))
    assert errors.returncode == 0, errors.stderr
    assert "student wrong, teacher right" in errors.stdout and "Limitations" in errors.stdout
    with (tmp_path / "queue" / "distillation_gap.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["group"] == "distillation_gap" and r["teacher_label"] == r["gold"] != r["student_label"] for r in rows)
    assert {"example_id", "external_id", "text", "p_ok", "p_bad", "reason", "corrected_label"} <= set(rows[0])

    report = graduate("report", str(tiny_project), "--output", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "ALL PASS: 4 of 4" in html
