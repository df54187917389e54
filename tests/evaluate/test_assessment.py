"""The whole evaluation on the tiny real project with the bias pair: figures, stored results,
gates, a second evaluation from the store, and the error analysis with its review queue."""

import csv
import json

import pytest
from sklearn.metrics import accuracy_score
from sqlalchemy import func, select

from graduate import Project
from graduate.errors import NotReadyError
from graduate.data.review import review_columns
from graduate.evaluate.error_analysis import GROUPS
from graduate.store.schema import eval_results, test_set_versions


def test_run_stores_every_figure_with_the_test_sets_hash(evaluated_project):
    project, summary = evaluated_project
    a = json.loads((project / ".graduate" / "evaluation.json").read_text())
    assert a["run_id"] == summary["evaluation_run_id"]
    assert set(a["test_sets"]) == {"test.balanced", "bias.original", "bias.fuzzed"}
    tb = a["test_sets"]["test.balanced"]
    assert (tb["version"], tb["purpose"], tb["content_hash"]) == (1, "quality", summary["test_sets"]["test.balanced"]["content_hash"])
    st = tb["students"]["tfidf-logreg"]
    for key in ["accuracy", "macro_f1", "pr_auc", "roc_auc", "ece", "brier", "kappa_with_teacher", "fpr", "tpr"]:
        assert st[key] is not None, key
    assert set(st["per_label"]) == {"ok", "bad"} and sum(sum(r) for r in st["confusion"]) == tb["n"]
    lo, hi = st["ci"]["accuracy"]
    assert lo <= st["accuracy"] <= hi and hi - lo > 0.05  # 41 items: a wide interval
    assert st["calibration"]["curve"] and st["ece"] == st["calibration"]["ece"]
    assert [s["kind"] for s in st["slices"]][:2] == ["label", "label"] and any(s["kind"] == "identity" for s in st["slices"])
    # the teacher is scored on what it answered, with hard-label figures and no calibration
    assert tb["teacher"]["accuracy"] == summary["test_sets"]["test.balanced"]["teacher"]["accuracy"]
    assert tb["teacher"]["calibration"] is None and tb["teacher"]["ci"]["accuracy"] is not None

    serving = a["serving"]["students"]["tfidf-logreg"]
    assert 0 < serving["latency_p50_ms"] <= serving["latency_p95_ms"] <= serving["latency_p99_ms"]
    assert serving["batch_ms_per_item"] > 0 and serving["latency_items"] == 50
    assert 0 < serving["cost_per_1k"] < a["serving"]["teacher"]["cost_per_1k"] / 1000

    bias = a["bias"]
    b = bias["students"]["tfidf-logreg"]
    assert (b["pairs"], b["changed_pairs"]) == (80, 60)
    assert b["mean_abs_shift"] is not None and b["max_abs_shift"] >= b["mean_abs_shift"]
    assert {t["term"] for t in b["terms"]} >= {"gay", "jewish", "muslim"}
    assert "teacher" in bias["teacher_note"]  # the teacher has (almost) no recorded calls on these sets
    # each term's FPR on the swapped copy = the same items' FPR before the swap + what the swap did
    same = [t for t in b["terms"] if t.get("fpr_same_items_original") is not None]
    assert same and all(t["fpr_perturbed"] == pytest.approx(t["fpr_same_items_original"] + t["fpr_change"]) for t in same)
    assert all(0 <= t["fpr_change_p"] <= 1 and t["became_fp"] + t["stopped_fp"] <= t["negatives_perturbed"] for t in same)
    from graduate.evaluate.assessment import figure
    from graduate.evaluate.criteria import judge, parse_gate

    for text, key in (("student.bias_fpr_change <= 1", "fpr_change"), ("student.bias_worst_term_fpr <= 1", "worst_term_fpr")):
        (res,) = judge(parse_gate(text), lambda o, s, ts: figure(a, o, s, ts), best_student="tfidf-logreg", quality_sets=["test.balanced"])
        assert res.left == b[key] and (res.passed or b[key] is None)
    assert a["best_student"] == "tfidf-logreg" == summary["best_student"]  # bias sets do not pick the best

    # one stored result per test set and predictor, each with the set's version and hash
    engine = Project.load(project).engine
    with engine.connect() as conn:
        rows = conn.execute(select(eval_results.c.test_set, eval_results.c.test_set_version, eval_results.c.test_set_hash, eval_results.c.predictor, eval_results.c.metrics).where(eval_results.c.run_id == a["run_id"])).all()
        frozen = dict(conn.execute(select(test_set_versions.c.name, test_set_versions.c.content_hash)).all())
    assert len(rows) == 3 * 3  # 3 test sets x (teacher + 2 students)
    assert all(r.test_set_hash == frozen[r.test_set] == a["test_sets"][r.test_set]["content_hash"] for r in rows)
    stored = next(r for r in rows if r.test_set == "test.balanced" and r.predictor.startswith("student:tfidf-logreg:"))
    assert stored.metrics["accuracy"] == st["accuracy"]


def test_gates_are_judged_with_their_figures(evaluated_project):
    project, summary = evaluated_project
    gates = summary["gates"]
    assert [g["passed"] for g in gates] == [True, True, True, False, True]
    assert summary["gates_passed"] is False
    failed = gates[3]
    assert failed["student"] == "tfidf-logreg" and failed["test_set"] == "test.balanced"
    assert failed["left"] == summary["test_sets"]["test.balanced"]["students"]["tfidf-logreg"]["accuracy"]
    assert failed["right"] == pytest.approx(summary["test_sets"]["test.balanced"]["teacher"]["accuracy"] + 0.5)


def test_evaluate_again_from_the_store(evaluated_project):
    project, summary = evaluated_project
    proj = Project.load(project)
    a = proj.evaluate()
    assert a["run_id"] != summary["evaluation_run_id"]
    assert a["students"]["tfidf-logreg"]["run_id"] == summary["students"]["tfidf-logreg"]["run_id"]  # not retrained
    before = json.loads((project / ".graduate" / "summary.json").read_text())["test_sets"]["test.balanced"]["students"]["tfidf-logreg"]["accuracy"]
    assert a["test_sets"]["test.balanced"]["students"]["tfidf-logreg"]["accuracy"] == before
    assert proj.latest_assessment()["run_id"] == a["run_id"]
    with proj.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(test_set_versions)).scalar_one() == 3  # frozen once


def test_error_groups_add_up_and_export_the_review_queue(evaluated_project, tmp_path):
    project, _ = evaluated_project
    proj = Project.load(project)
    analysis = proj.error_analysis()
    a = proj.latest_assessment()
    assert analysis.test_sets == ["test.balanced"] and analysis.student == "tfidf-logreg"
    c = analysis.counts["test.balanced"]
    tb = a["test_sets"]["test.balanced"]
    s_acc, t = tb["students"]["tfidf-logreg"]["accuracy"], tb["teacher"]
    n = c["items"]
    # the groups follow from the two predictors' correctness
    assert c["distillation_gap"] + c["both_wrong"] + c["student_wrong_no_teacher"] == round(n * (1 - s_acc))
    assert c["distillation_gap"] + c["both_right"] == round(t["answered"] * t["accuracy"])
    # ranked by the student's confidence, most confident first
    gap = analysis.group("distillation_gap")
    assert len(gap) == c["distillation_gap"] > 0
    assert [r["student_confidence"] for r in gap] == sorted((r["student_confidence"] for r in gap), reverse=True)
    assert all(r["student_label"] != r["gold"] == r["teacher_label"] for r in gap)

    files = analysis.export(tmp_path / "errors")
    assert set(files) == set(GROUPS)
    with files["distillation_gap"].open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == review_columns(["ok", "bad"])
    assert len(rows) == len(gap) and rows[0]["example_id"] == str(gap[0]["example_id"]) and rows[0]["corrected_label"] == ""
    assert float(rows[0]["p_ok"]) + float(rows[0]["p_bad"]) == pytest.approx(1.0, abs=1e-5)
    # no cell a spreadsheet would run as a formula (the fixture has wiki headings: "== Jerk == ...")
    cells = [v for g in GROUPS for row in csv.reader(files[g].open(newline="", encoding="utf-8")) for v in row]
    assert not [v for v in cells if v.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert any(v.startswith("'=") for v in cells)
    # the limitations name the figures in plain words
    text = " ".join(analysis.limitations)
    assert f"{100 * s_acc:.1f}%" in text and "points" in text and "identity terms" in text
    # latency is timed on the whole machine (an encoder uses every core), not on one core
    assert f"answers one item in {a['serving']['students']['tfidf-logreg']['latency_p50_ms']:.2f} ms" in text and "on this machine" in text
    assert "one CPU core" not in text

    with pytest.raises(NotReadyError, match="no evaluated student 'bert'"):
        proj.error_analysis(student="bert")
    with pytest.raises(NotReadyError, match=r"test sets \['test.nope'\] were not evaluated"):
        proj.error_analysis(test_sets=["test.nope"])

    # the bias sets can be analysed on request: the teacher has almost no answers there
    bias = proj.error_analysis(test_sets=["bias.fuzzed"])
    assert bias.counts["bias.fuzzed"]["student_wrong_no_teacher"] > 0
    acc = accuracy_score(*zip(*[(r["gold"], r["student_label"]) for r in bias.rows if r["group"] != "student_better"])) if bias.rows else 0.0
    assert acc == 0.0  # every exported row but 'student_better' is a student mistake
