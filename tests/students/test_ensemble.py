"""The ensemble student: members trained on the same data, probabilities averaged by weight."""

import json
from pathlib import Path

import numpy as np
import pytest

from graduate.errors import StudentError
from graduate.pipeline.project import Project
from graduate.spec import StudentSpec
from graduate.students.registry import load_student, make_student, save_student

LABELS = ["ok", "bad"]


def test_probabilities_are_the_weighted_mean_of_the_members(data, tmp_path):
    texts, labels = data
    members = [{"kind": "tfidf-logreg", "weight": 3}, {"kind": "majority"}]
    ens = make_student("ensemble", LABELS, {"members": members})
    ens.fit(texts[:120], labels[:120])
    save_student(ens, tmp_path / "e")
    # Each member is saved in its own kind's layout and loads on its own.
    tfidf, majority = load_student(tmp_path / "e" / "member_0"), load_student(tmp_path / "e" / "member_1")
    assert (tfidf.kind, majority.kind) == ("tfidf-logreg", "majority")
    want = (3 * tfidf.predict_proba(texts[120:]) + majority.predict_proba(texts[120:])) / 4
    assert np.allclose(ens.predict_proba(texts[120:]), want)
    assert not np.allclose(want, tfidf.predict_proba(texts[120:]))  # the second member moved the average
    assert [m["kind"] for m in ens.report["members"]] == ["tfidf-logreg", "majority"]


def test_use_weights_false_trains_a_member_on_the_raw_class_shares(data):
    texts, labels = data
    n_bad = labels.count("bad")
    # Weights that make 'bad' 90% of the weighted data.
    weights = [0.9 / n_bad if lab == "bad" else 0.1 / (len(labels) - n_bad) for lab in labels]
    members = [{"kind": "majority"}, {"kind": "majority", "use_weights": False}]
    ens = make_student("ensemble", LABELS, {"members": members})
    ens.fit(texts, labels, sample_weight=weights)
    weighted, raw = (m.predict_proba(["x"])[0, 1] for m in ens.members)
    assert weighted == pytest.approx(0.9)
    assert raw == pytest.approx(n_bad / len(labels))
    assert ens.predict_proba(["x"])[0, 1] == pytest.approx((0.9 + n_bad / len(labels)) / 2)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([{"kind": "tfidf-logreg"}], "at least two members"),
        ("tfidf-logreg", "at least two members"),
        ([{"kind": "tfidf-logreg"}, {"weight": 1}], r"members\[1\] has no kind"),
        ([{"kind": "tfidf-logreg"}, {"kind": "ensemble"}], r"members\[1\]\.kind 'ensemble' is not a member kind"),
        ([{"kind": "tfidf-logreg"}, {"kind": "bert"}], r"members\[1\]\.kind 'bert' is not a member kind; known: \['embed-logreg'"),
        ([{"kind": "tfidf-logreg", "weight": 0}, {"kind": "majority"}], r"members\[0\]\.weight must be a number > 0"),
        ([{"kind": "tfidf-logreg", "wieght": 2}, {"kind": "majority"}], r"members\[0\]: unknown keys \['wieght'\]"),
        ([{"kind": "tfidf-logreg", "use_weights": "no"}, {"kind": "majority"}], r"use_weights must be true or false"),
        ([{"kind": "tfidf-logreg", "params": {"C": 1, "learning_rat": 1}}, {"kind": "majority"}], r"unknown params \['learning_rat'\]"),
    ],
)
def test_bad_member_lists_fail_before_any_training(members, message):
    with pytest.raises(StudentError, match=message):
        make_student("ensemble", LABELS, {"members": members})


def test_a_member_that_cannot_train_is_named(data):
    texts, labels = data
    ens = make_student("ensemble", LABELS, {"members": [{"kind": "majority"}, {"kind": "encoder", "params": {"base_model": "/nonexistent/model"}}]})
    with pytest.raises(StudentError, match=r"member 1 \(encoder\).*/nonexistent/model"):
        ens.fit(texts, labels)


def test_in_a_project_each_member_is_a_run_reused_when_trained_before(tiny_project, tiny_encoder):
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    dataset = proj.build_training_set()
    dataset.soft_labels = [{"ok": 0.2, "bad": 0.8} if lab == "bad" else {"ok": 0.9, "bad": 0.1} for lab in dataset.labels]
    tfidf = proj.train(StudentSpec(kind="tfidf-logreg"), dataset, seed=7)  # as a ladder's earlier rung
    encoder = {"base_model": str(tiny_encoder), "max_steps": 2, "max_length": 32, "batch_size": 16, "agreement_items": 16, "save_float": False}
    spec = StudentSpec(kind="ensemble", name="blend", params={"members": [{"kind": "encoder", "params": encoder}, {"kind": "tfidf-logreg"}]})
    result = proj.train(spec, dataset, seed=7)
    run = json.loads((Path(result.directory).parent / "run.json").read_text())
    enc_run, tfidf_run = run["members"]
    assert tfidf_run == {"run_id": tfidf.run_id, "kind": "tfidf-logreg", "reused": True, "fit_seconds": tfidf.fit_seconds}
    assert enc_run["kind"] == "encoder" and not enc_run["reused"] and enc_run["run_id"] != result.run_id
    assert run["fit_seconds"] == pytest.approx(enc_run["fit_seconds"] + tfidf.fit_seconds)
    # The member runs got what the project gives any student: the teacher's distributions, the seed.
    assert result.student.report["members"][0]["soft_labels"] is True
    assert result.student.members[0].params["seed"] == 7 and result.student.members[1].params["seed"] == 7
    # lora-llm members answer in the teacher's format: the ensemble carries the spec's prompt for them.
    assert "{text}" in run["params"]["member_defaults"]["lora-llm"]["prompt"]
    again = load_student(Path(result.directory))
    texts = dataset.texts[:20]
    assert np.array_equal(again.predict_proba(texts), result.student.predict_proba(texts))
    # Trained again: the whole ensemble run is reused.
    assert proj.train(spec, dataset, seed=7).run_id == result.run_id


def test_in_a_project_use_weights_false_trains_the_member_on_the_unweighted_version(tiny_project):
    (tiny_project / "graduate.yaml").write_text(
        (tiny_project / "graduate.yaml").read_text() + "\nclean:\n  balance: {strategy: prior, prior: {bad: 0.9, ok: 0.1}}\n"
    )
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    dataset = proj.build_training_set()
    raw_share = dataset.labels.count("bad") / len(dataset.labels)
    members = [{"kind": "majority"}, {"kind": "majority", "use_weights": False}]
    result = proj.train(StudentSpec(kind="ensemble", params={"members": members}), dataset)
    weighted, raw = (m.predict_proba(["x"])[0, 1] for m in result.student.members)
    assert weighted == pytest.approx(0.9) and raw == pytest.approx(raw_share)
    # The unweighted version is its own dataset version: a plain majority on it reuses member 1.
    run = json.loads((Path(result.directory).parent / "run.json").read_text())
    plain = proj.train(StudentSpec(kind="majority"), dataset.without_weights())
    assert plain.reused and plain.run_id == run["members"][1]["run_id"] != run["members"][0]["run_id"]
    assert dataset.without_weights().content_hash != dataset.content_hash


def test_shared_base_models_of_members_are_counted(data):
    texts, labels = data
    ens = make_student("ensemble", LABELS, {"members": [{"kind": "embed-logreg", "params": {"max_length": 64}}, {"kind": "majority"}]})
    assert ens.base_model_bytes == 0  # nothing trained yet
    ens.fit(texts[:60], labels[:60])
    # The frozen MiniLM the embed-logreg member reads from its package (the ladder's "+ base" size).
    assert ens.base_model_bytes == ens.members[0].base_model_bytes > 50_000_000
