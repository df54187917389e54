"""Issue 17 acceptance: a new multi-class task, labels in a non-alphabetical order, through the
real CLI (`run`, `evaluate`, `errors`, `report`, `teacher audit`, `serve`), with every figure of
the recorded teacher checked against hand counts from the fixture (tests/multiclass_project.py)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from multiclass_project import hand_counts, items, make_project, teacher_answer
from servers.graduate_server import KEY, cli_env, serve_process

FOUR = ["Tea", "Coffee", "Vitamin", "Shoes"]
THREE = ["Vitamin", "Sunscreen", "Coffee"]


def graduate(*args: str) -> subprocess.CompletedProcess:
    env = {**cli_env(), "COLUMNS": "200"}
    env.pop("GRADUATE_STORE_URL", None)
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=600, env=env)


def flat(text: str) -> str:
    return " ".join(text.split())


def soft_auc(labels: list[str]) -> float:
    """The recorded teacher's macro one-vs-rest ROC-AUC from its soft labels, by the fixture's rule."""
    gold, scores = [], []
    for r in items(labels):
        if r["subsets"] != "test":
            continue
        answer, _ = teacher_answer(r["id"], r["category"], labels)
        if answer is None:
            continue
        second = r["category"] if answer != r["category"] else labels[(labels.index(answer) + 1) % len(labels)]
        third = next(lab for lab in labels[labels.index(second) + 1 :] + labels if lab not in (answer, second))
        p = {answer: 0.7, second: 0.2, third: 0.1}
        gold.append([1 if lab == r["category"] else 0 for lab in labels])
        scores.append([p.get(lab, 0.0) for lab in labels])
    return float(roc_auc_score(np.array(gold), np.array(scores), average="macro"))


@pytest.mark.parametrize("labels", [FOUR, THREE], ids=["4-class", "3-class"])
def test_a_multiclass_project_runs_end_to_end_with_the_right_figures(tmp_path: Path, labels: list[str]) -> None:
    project = make_project(tmp_path / "p", labels)
    run = graduate("run", str(project))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    out = flat(run.stdout)
    assert "precision (macro)" in out and "roc_auc (macro, one-vs-rest)" in out
    assert "fpr" not in out.lower().split("gates")[0] and "e-0" not in out  # no FPR rows, no scientific notation

    hand = hand_counts(labels)
    summary = json.loads((project / ".graduate" / "summary.json").read_text())
    teacher = summary["test_sets"]["test"]["teacher"]
    assert teacher["answered"] == hand["answered"] and teacher["unparseable"] == hand["items"] - hand["answered"]
    assert teacher["accuracy"] == pytest.approx(hand["correct"] / hand["answered"])
    assert teacher["scores_from"] == "soft labels (logprobs)"
    assert teacher["roc_auc"] == pytest.approx(soft_auc(labels))
    evaluation = json.loads((project / ".graduate" / "evaluation.json").read_text())
    per_label = evaluation["test_sets"]["test"]["teacher"]["per_label"]
    for lab in labels:
        h = hand["per_label"][lab]
        assert per_label[lab]["precision"] == pytest.approx(h["tp"] / (h["tp"] + h["fp"]))
        assert per_label[lab]["recall"] == pytest.approx(h["tp"] / (h["tp"] + h["fn"]))
        assert per_label[lab]["support"] == h["support"]
    confusion = evaluation["test_sets"]["test"]["teacher"]["confusion"]
    assert sum(confusion[i][i] for i in range(len(labels))) == hand["correct"]  # rows and columns in the spec's order
    assert evaluation["test_sets"]["test"]["teacher"]["ece"] is not None  # calibration from the soft labels
    assert not [s for s in evaluation["test_sets"]["test"]["teacher"]["slices"] if s["kind"] == "identity"]

    ev = graduate("evaluate", str(project))
    assert ev.returncode == 0, ev.stdout[-2000:] + ev.stderr[-2000:]  # both gates pass, cost gate included
    assert "F1 (macro)" in flat(ev.stdout) and "tpr" not in ev.stdout

    err = graduate("errors", str(project))
    assert err.returncode == 0, err.stderr[-2000:]
    with (project / ".graduate" / "errors" / "student_better.csv").open(newline="") as f:
        student_better = list(csv.DictReader(f))
    with (project / ".graduate" / "errors" / "both_wrong.csv").open(newline="") as f:
        both_wrong = list(csv.DictReader(f))
    assert len(student_better) + len(both_wrong) == hand["answered"] - hand["correct"]  # every teacher mistake is listed once

    rep = graduate("report", str(project))
    assert rep.returncode == 0, rep.stderr[-2000:]
    html = (project / ".graduate" / "report.html").read_text(encoding="utf-8")
    assert "(positive:" not in html and 'id="bias"' not in html and "identity term" not in html
    assert 'id="per-label-test" open' in html
    assert "roc_auc (macro, one-vs-rest)" in html and ">fpr<" not in html.lower()

    audit = graduate("teacher", "audit", str(project))
    assert audit.returncode == 0, audit.stderr[-2000:]
    table = audit.stdout.split("calls:")[0]
    assert "FPR" not in table and "precision (macro)" in table
    assert "not a ceiling" in flat(audit.stdout)


def test_the_multiclass_student_is_served_in_the_teachers_format(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", FOUR)
    assert graduate("run", str(project)).returncode == 0
    with serve_process(project, "--workers", "0", env=cli_env(GRADUATE_API_KEYS=KEY)) as server:
        with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {KEY}"}, timeout=30) as client:
            r = client.post("/v1/classify", json={"texts": ["Twinings English Breakfast Tea, 20 bags", "Nike Men's Air Max running shoe"]})
            assert r.status_code == 200, r.text
            results = r.json()["results"]
            assert [x["label"] for x in results] == ["Tea", "Shoes"]
            assert all(set(x["probs"]) == set(FOUR) and abs(sum(x["probs"].values()) - 1) < 1e-6 for x in results)
            from graduate.pipeline.project import Project
            from graduate.teacher.prompt import render_messages

            spec = Project.load(project).spec
            chat = client.post("/v1/chat/completions", json={"model": "gpt-4-0613", "messages": render_messages(spec.teacher, "Folgers Classic Roast Ground Coffee")})
            assert chat.status_code == 200, chat.text
            assert json.loads(chat.json()["choices"][0]["message"]["content"]) == {"category": "Coffee"}
