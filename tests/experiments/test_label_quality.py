"""The label-quality comparison's paired difference: accuracy minus the baseline's on the same items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.experiments.label_quality import paired_difference


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=60))
def test_the_difference_is_the_mean_of_paired_flips_and_its_interval_brackets_it(pairs):
    a = np.array([float(x) for x, _ in pairs])
    b = np.array([float(y) for _, y in pairs])
    out = paired_difference(a, b, resamples=300)
    if len(pairs) < 2:  # nothing to resample: scipy refused one item and a test set of one crashed the command
        assert out["ci95"] is None and out["difference"] == (float(a[0] - b[0]) if pairs else None)
        return
    assert out["difference"] == pytest.approx(float(np.mean(a - b)))
    low, high = out["ci95"]
    assert -1.0 <= low <= high <= 1.0
    if np.all(a - b == (a - b)[0]):
        assert low == high == pytest.approx(float((a - b)[0]))


def test_a_multi_label_project_is_scored_by_label_sets(tmp_path):
    """On a multi-label task each variant's student was scored by its likeliest single label against
    gold sets (argmax, then accuracy and one label's F1): a student that answers every test set right
    showed "test accuracy 0.625", every empty or two-label set wrong. Each variant is now scored by
    the sets it answers: exact set match (its paired difference with a) and micro-F1."""
    import json
    import os
    import subprocess
    import sys

    from graduate.experiments.label_quality import compare_label_quality
    from graduate.formats import labelset
    from graduate.pipeline.project import Project
    from test_multilabel_edges import LABEL_WORDS, make_project

    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    result = compare_label_quality(project, review_items=10)
    raw = result["variants"]["a_raw"]["tests"]["test"]
    # the figures of the a variant's student, from its own sets on the test set
    scratch = Project.load(project / ".graduate" / "label_quality")
    (test,) = scratch.load_test_sets()
    run_id = result["variants"]["a_raw"]["run_id"]
    from graduate.students.registry import load_student
    from graduate.store.runs import get_runs

    run = next(r for r in get_runs(scratch.engine, root=scratch.root, kind="train") if r.id == run_id)
    student = load_student(Path(run.artifact_dir))
    sets = student.decide(student.predict_proba([ex.text for ex in test.examples]))
    assert any(g == labelset.NONE for g in test.gold) and any(";" in g for g in test.gold)  # the sets argmax could never answer
    exact = sum(s == g for s, g in zip(sets, test.gold)) / len(sets)
    assert raw["n"] == 16 and raw["exact_match"] == pytest.approx(exact) and exact > 0.9
    assert raw["micro_f1"] > 0.9 and "accuracy" not in raw
    assert result["variants"]["b_cleaned"]["tests"]["test"]["exact_match_vs_raw"]["difference"] is not None
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"} | {"COLUMNS": "250"}
    r = subprocess.run([sys.executable, "-m", "graduate", "data", "compare", str(project), "--review-items", "10"], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test exact set match" in r.stdout and "micro-F1" in r.stdout and f"{exact:.3f}" in r.stdout.split("a_raw", 1)[1].splitlines()[0], r.stdout
    assert json.loads((project / ".graduate" / "summary.json").read_text())["label_quality"]["variants"]["a_raw"]["tests"]["test"]["exact_match"] == pytest.approx(exact)
