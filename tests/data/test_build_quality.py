"""The training-set build with its cleaning steps, labellers and lineage, on the tiny project."""

import csv
from pathlib import Path

import pytest

from graduate import Project
from graduate.data.build import build_training_set
from graduate.formats.voting import majority_vote
from quality_project import edit_spec, with_audit


def _loaded(project: Path) -> Project:
    proj = Project.load(project)
    proj.import_logs()
    proj.load_data()
    return proj


def test_cleaning_steps_are_recorded_and_reproducible(tiny_project):
    edit_spec(
        tiny_project,
        clean={
            "filters": {"min_chars": 40, "drop_patterns": ["(?i)wikipedia"]},
            "near_duplicates": {"enabled": True, "threshold": 0.5},
            "label_issues": {"action": "remove", "folds": 3, "params": {"max_iter": 300}, "max_share": 0.05},
            "balance": {"strategy": "class_weight"},
        },
    )
    proj = _loaded(tiny_project)
    raw = build_training_set(proj.engine, proj.spec.model_copy(update={"clean": type(proj.spec.clean)()}))
    ds = proj.build_training_set()
    steps = {s["step"]: s for s in ds.recipe["steps"]}
    assert list(steps) == ["pool", "teacher_answer", "parse", "human_labels", "filters", "test_overlap", "exact_duplicates", "near_duplicates", "label_issues", "balance"]
    f = steps["filters"]
    assert f["dropped"] > 0 and len(f["removed"]) == f["dropped"]
    assert all(why.startswith("shorter than 40") or why == "matches '(?i)wikipedia'" for _, why in f["removed"])
    li = steps["label_issues"]
    assert li["dropped"] == min(li["found"], int(0.05 * steps["near_duplicates"]["kept"]))
    # nothing disappears silently: every item of the pool is either kept or listed by a step
    pool = steps["pool"]["kept"]
    removed = {i for s in ds.recipe["steps"] for i, *_ in s.get("removed", [])} | set(steps["teacher_answer"]["removed"]) | set(steps["parse"]["removed"])
    assert len(removed) + len(ds.examples) == pool
    assert not removed & {ex.id for ex in ds.examples}
    # class weights even the classes; weights make it another version
    counts = steps["balance"]["after"]
    w = dict(zip(ds.labels, ds.weights))
    assert w["bad"] * counts["bad"] == pytest.approx(w["ok"] * counts["ok"])
    assert ds.content_hash != raw.content_hash and ds.recipe["config"]["clean"]["balance"]["strategy"] == "class_weight"
    # the same recipe on the same store builds the same version
    again = proj.build_training_set()
    assert (again.content_hash, again.id, again.labels) == (ds.content_hash, ds.id, ds.labels)


def test_prior_balance_weights_the_set_to_the_production_shares(tiny_project):
    edit_spec(tiny_project, clean={"balance": {"strategy": "prior", "prior": {"ok": 0.9, "bad": 0.1}}})
    proj = _loaded(tiny_project)
    ds = proj.build_training_set()
    step = next(s for s in ds.recipe["steps"] if s["step"] == "balance")
    assert step["prior"] == {"ok": 0.9, "bad": 0.1} and set(step["class_weights"]) == {"ok", "bad"}
    bad_mass = sum(w for w, lab in zip(ds.weights, ds.labels) if lab == "bad")
    assert bad_mass / sum(ds.weights) == pytest.approx(0.1)
    assert step["before"]["bad"] / len(ds.labels) > 0.2  # the fixture's pool over-samples "bad"


@pytest.mark.parametrize(
    ("balance", "message"),
    [
        ({"strategy": "prior"}, "strategy prior needs prior"),
        ({"strategy": "prior", "prior": {"ok": 0.5, "bad": 0.2}}, "prior shares must sum to 1"),
        ({"strategy": "prior", "prior": {"ok": 0.9, "toxic": 0.1}}, r"must give a share for each label \['ok', 'bad'\]"),
        ({"strategy": "none", "prior": {"ok": 0.9, "bad": 0.1}}, "prior is used only with strategy: prior"),
    ],
)
def test_a_bad_prior_is_a_clear_spec_error(tiny_project, balance, message):
    from graduate.errors import SpecError
    from graduate.spec import load_spec

    edit_spec(tiny_project, clean={"balance": balance})
    with pytest.raises(SpecError, match=message):
        load_spec(tiny_project)


def test_group_cap_from_a_group_column(tiny_project):
    src = tiny_project / "comments.csv"
    with src.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["author"] = r["id"][-1]  # 16 "authors"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    raw = edit_spec(tiny_project, clean={"group_cap": 3})
    raw["data"][0]["group_column"] = "author"
    edit_spec(tiny_project, data=raw["data"])
    proj = _loaded(tiny_project)
    ds = proj.build_training_set()
    per = {}
    for ex in ds.examples:
        per[ex.group] = per.get(ex.group, 0) + 1
    assert max(per.values()) == 3 and len(per) == 16
    step = next(s for s in ds.recipe["steps"] if s["step"] == "group_cap")
    assert step["dropped"] > 50 and all(why.startswith("group ") for _, why in step["removed"])


def test_ensemble_and_self_consistency_labellers(tiny_project):
    # Train on test.balanced here: the only items with answers from every recorded configuration.
    with_audit(tiny_project)
    edit_spec(tiny_project, train={"source": "jigsaw", "tags": ["test.balanced"], "exclude_test_overlap": False, "labeller": {"kind": "ensemble", "members": ["gpt-4 simple", "gpt-4 cot", "gpt-3.5 simple"]}})
    proj = _loaded(tiny_project)
    ds = proj.build_training_set()
    step = next(s for s in ds.recipe["steps"] if s["step"] == "teacher_answer")
    assert step["labeller"] == "ensemble:majority(gpt-4 simple,gpt-4 cot,gpt-3.5 simple)" and step["member_coverage"]["gpt-4 cot"] == 41
    from graduate.data.labellers import label_pool

    got = label_pool(proj.engine, proj.spec, ds.examples)
    for ex, lab in zip(ds.examples, ds.labels):
        members = list(got.by_example[ex.id].members.values())
        assert lab == majority_vote(members, tie_break="first").label and members.count(lab) >= 2

    # weighted needs an audit first
    edit_spec(tiny_project, train={"source": "jigsaw", "tags": ["test.balanced"], "exclude_test_overlap": False, "labeller": {"kind": "ensemble", "method": "weighted"}})
    from graduate.errors import NotReadyError

    with pytest.raises(NotReadyError, match="graduate teacher audit"):
        Project.load(tiny_project).build_training_set()

    # self-consistency over gpt-3.5's five recorded answers per item
    raw = edit_spec(tiny_project, train={"source": "jigsaw", "tags": ["test.balanced"], "exclude_test_overlap": False, "labeller": {"kind": "self_consistency", "min_vote_share": 0.9, "weight_by_vote_share": True}})
    raw["teacher"]["model"] = "gpt-3.5-turbo"
    edit_spec(tiny_project, teacher=raw["teacher"])
    proj = Project.load(tiny_project)
    sc = proj.build_training_set()
    steps = {s["step"]: s for s in sc.recipe["steps"]}
    assert steps["teacher_answer"]["items_with_several_answers"] >= 40
    assert steps["low_agreement"]["dropped"] >= 1  # items whose samples disagreed
    assert all(0.9 <= w <= 1.0 for w in sc.weights)
