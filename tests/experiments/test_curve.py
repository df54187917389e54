"""`graduate curve` on the tiny project: points per share and seed, a fit, a plot, the answer."""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from graduate.errors import SpecError
from graduate.experiments.curve import learning_curve, subsample
from graduate.pipeline.project import Project


def test_curve_on_the_tiny_project(tiny_project):
    proj = Project.load(tiny_project)
    res = learning_curve(proj, kind="tfidf-logreg", fractions=[0.25, 0.5, 0.75, 1.0], seeds=[0, 1], more_items=500)
    assert [p.size for p in res.points] == [30, 60, 90, 120]
    assert all(len(p.scores) == 2 for p in res.points) and len(res.runs) == 8
    assert res.test_set == "test.balanced" and res.teacher_score is not None
    assert res.teacher_cost_per_item_usd and res.teacher_cost_per_item_usd > 0
    assert re.fullmatch(
        r"labelling 500 more items is expected to add -?\d+\.\d\d points and cost \$\d+\.\d\d|stop labelling: .*|cannot say .*", res.advice.text
    )
    if res.advice.cost_usd is not None:
        assert res.advice.cost_usd == pytest.approx(500 * res.teacher_cost_per_item_usd)
    for key in ("png", "svg", "json"):
        assert Path(res.files[key]).exists() and Path(res.files[key]).parent == proj.workdir
    data = json.loads(Path(res.files["json"]).read_text())
    assert data["advice"]["text"] == res.advice.text and len(data["points"]) == 4
    again = learning_curve(proj, kind="tfidf-logreg", fractions=[0.25, 0.5, 0.75, 1.0], seeds=[0, 1], more_items=500)
    assert all(r.reused for r in again.runs)  # a repeated curve retrains nothing


def test_a_share_or_seed_given_twice_is_one_run_not_two_seeds(tiny_project):
    res = learning_curve(Project.load(tiny_project), kind="majority", fractions=[0.5, 1.0, 0.5], seeds=[0, 0])
    assert [(p.fraction, len(p.scores)) for p in res.points] == [(0.5, 1), (1.0, 1)] and len(res.runs) == 2


def test_too_few_rows_for_the_smallest_share_is_clear(tiny_project):
    with pytest.raises(SpecError, match=r"--fractions: too few rows for fraction 0.01: .*use at least 5%"):
        learning_curve(Project.load(tiny_project), fractions=[0.01, 0.5, 1.0], seeds=[0])


def test_unknown_kind_is_clear(tiny_project):
    with pytest.raises(SpecError, match=r"--student: unknown student kind 'bert'; known kinds, smallest first: \['majority'"):
        learning_curve(Project.load(tiny_project), kind="bert")


def test_subsample_is_stratified_and_seeded(tiny_project):
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    ds = proj.build_training_set()
    a, b, c = subsample(ds, 0.5, 0), subsample(ds, 0.5, 0), subsample(ds, 0.5, 1)
    assert a.content_hash == b.content_hash != c.content_hash
    assert a.label_counts == {"ok": 40, "bad": 20}
    assert subsample(ds, 1.0, 3).content_hash == ds.content_hash
    # Balance weights are part of a share's version: other weights must not reuse its runs.
    weighted = subsample(replace(ds, weights=[2.0 if lab == "bad" else 1.0 for lab in ds.labels]), 0.5, 0)
    assert weighted.content_hash != a.content_hash and weighted.weights and set(weighted.weights) == {1.0, 2.0}


def test_progress_counts_items_trained_so_the_time_left_follows_the_large_shares(tiny_project):
    # Counted in runs, the 100% run (the longest) was the last third of the bar: "about 44 s left" at
    # 67% of a 3-minute curve. Counted in items trained, it is the share it takes.
    seen: list[tuple[int, int]] = []
    res = learning_curve(
        Project.load(tiny_project), kind="majority", fractions=[0.25, 1.0], seeds=[0, 1],
        progress=lambda stage, done, total: seen.append((done, total)) if stage.startswith("learning curve") else None,
    )  # fmt: skip
    n = res.dataset_size
    total = 2 * (round(0.25 * n) + n)
    assert seen == [(0, total), (round(0.25 * n), total), (2 * round(0.25 * n), total), (2 * round(0.25 * n) + n, total), (total, total)]
