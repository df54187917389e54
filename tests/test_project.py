"""The facade on the tiny real project: runs, predictions, lineage and reproducibility records."""

import json
from pathlib import Path

from sqlalchemy import func, select

from graduate import Project
from graduate.store.runs import get_runs
from graduate.store.schema import dataset_items, labels, predictions


def test_run_records_runs_predictions_and_lineage(tiny_project):
    proj = Project.load(tiny_project)
    summary = proj.run()
    train_runs = get_runs(proj.engine, kind="train", status="finished", root=proj.root)  # folders are stored relative to it
    assert {r.name for r in train_runs} == {"majority", "tfidf-logreg"}
    assert all(not Path(r.artifact_dir).is_absolute() for r in get_runs(proj.engine, kind="train"))
    evals = get_runs(proj.engine, kind="evaluate", status="finished")
    assert [r.id for r in evals] == [summary["evaluation_run_id"]]
    n_test = summary["test_sets"]["test.balanced"]["n"]
    with proj.engine.connect() as conn:
        n_pred = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
        n_items = conn.execute(select(func.count()).select_from(dataset_items)).scalar_one()
        n_teacher_labels = conn.execute(select(func.count()).select_from(labels).where(labels.c.kind == "teacher")).scalar_one()
    assert n_pred == n_test * 3  # teacher + two students
    assert n_items == summary["dataset"]["size"]
    assert n_teacher_labels == 161

    # every step of the training-set recipe accounts for what it dropped
    steps = summary["dataset"]["recipe"]["steps"]
    assert steps[0]["kept"] - sum(s.get("dropped", 0) for s in steps[1:]) == summary["dataset"]["size"]

    tfidf = next(r for r in train_runs if r.name == "tfidf-logreg")
    record = json.loads((Path(tfidf.artifact_dir).parent / "run.json").read_text())
    assert record["dataset"]["hash"] == summary["dataset"]["content_hash"] == tfidf.dataset_hash
    assert record["seed"] == 0 and record["code_version"] and record["spec"]["teacher"]["model"] == "gpt-4-1106-preview"

    student, run = proj.best_student()
    assert run.name == summary["best_student"] == "tfidf-logreg"
    assert student.predict_proba(["you idiot"]).shape == (1, 2)


def test_changed_student_params_train_a_new_run(tiny_project):
    proj = Project.load(tiny_project)
    proj.run()
    spec = tiny_project / "graduate.yaml"
    spec.write_text(spec.read_text().replace("params: {min_df: 1, max_iter: 500}", "params: {min_df: 1, max_iter: 500, C: 1.0}"))
    summary = Project.load(tiny_project).run()
    assert summary["students"]["tfidf-logreg"]["reused"] is False
    assert summary["students"]["majority"]["reused"] is True


def test_a_damaged_reusable_run_is_trained_again(tiny_project):
    proj = Project.load(tiny_project)
    proj.run()
    tfidf = next(r for r in get_runs(proj.engine, kind="train", status="finished", root=proj.root) if r.name == "tfidf-logreg")
    (Path(tfidf.artifact_dir) / "pipeline.joblib").write_bytes(b"half a file")  # copied in part, or edited
    summary = Project.load(tiny_project).run()
    assert summary["students"]["tfidf-logreg"]["reused"] is False  # trained again, not a traceback
    assert summary["students"]["majority"]["reused"] is True
    assert summary["students"]["tfidf-logreg"]["run_id"] != tfidf.id
