"""Provenance of training labels: teacher.terms says whether its answers may be trained on; a
build refuses labels whose terms forbid it unless train.allow_restricted_labels; the recipe and the
report list who produced the labels and under which terms."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from graduate.errors import SpecError
from graduate.pipeline.project import Project


def set_spec(project: Path, **sections: dict) -> Project:
    path = project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return Project.load(project)


def test_a_build_refuses_labels_the_terms_forbid_and_says_how_to_go_on(trained_copy: Path) -> None:
    proj = set_spec(trained_copy, teacher={"terms": {"train_allowed": False, "note": "provider terms 2024-01, 2(c)"}})
    with pytest.raises(SpecError) as err:
        proj.build_training_set()
    message = str(err.value)
    assert len(message.splitlines()) == 1 and "teacher.terms.train_allowed" in message and "provider terms 2024-01, 2(c)" in message
    assert "train.allow_restricted_labels: true" in message and "teacher:gpt-4-1106-preview/simple@" in message
    proj = set_spec(trained_copy, train={"allow_restricted_labels": True})
    ds = proj.build_training_set()
    (teacher,) = ds.recipe["provenance"]["labels"]
    assert teacher["train_allowed"] is False and teacher["items"] == len(ds.examples) and ds.recipe["provenance"]["allow_restricted_labels"]


def test_the_report_lists_the_provenance_and_an_unchecked_teacher(trained_copy: Path) -> None:
    proj = Project.load(trained_copy)
    proj.run()
    html = proj.report().read_text()
    assert '<table id="provenance">' in html and "<td>unknown</td>" in html and "terms were not checked" in html
    proj = set_spec(trained_copy, teacher={"terms": {"train_allowed": True, "note": "enterprise agreement"}})
    proj.run()
    html = proj.report().read_text()
    assert "enterprise agreement" in html and "terms were not checked" not in html


def test_an_ensemble_with_one_forbidding_member_is_refused(trained_copy: Path) -> None:
    proj = set_spec(
        trained_copy,
        audit={"configs": [{"name": "gpt4", "terms": {"train_allowed": True}}, {"name": "gpt35", "model": "gpt-3.5-turbo", "terms": {"train_allowed": False}}]},
        train={"labeller": {"kind": "ensemble", "members": ["gpt4", "gpt35"]}},
    )
    with pytest.raises(SpecError, match=r"teacher:gpt-3.5-turbo/simple@\w+, whose terms forbid"):
        proj.build_training_set()


def test_each_label_carries_who_made_it_and_under_which_terms(tiny_project: Path) -> None:
    """Per label: a teacher label stores the terms it was produced under; each training item stores
    who produced its label (the teacher labeller, or human:REVIEWER after a review)."""
    from sqlalchemy import select

    from graduate.store.schema import dataset_items, labels

    proj = set_spec(tiny_project, teacher={"terms": {"train_allowed": True, "note": "contract 42"}})
    proj.import_logs()
    proj.load_data()
    ds = proj.build_training_set()
    with proj.engine.connect() as conn:
        terms = conn.execute(select(labels.c.terms).where(labels.c.kind == "teacher")).scalars().all()
        who = conn.execute(select(dataset_items.c.labeller).where(dataset_items.c.dataset_id == ds.id)).scalars().all()
    assert terms and all(t == {"train_allowed": True, "note": "contract 42"} for t in terms)
    assert len(who) == len(ds.examples) and set(who) == {proj.spec.teacher.labeller}
