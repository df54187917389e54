"""Frozen, versioned test sets: a changed set is refused until it is declared a new version."""

import csv

import pytest
import yaml
from sqlalchemy import select

from graduate import Project
from graduate.errors import TestSetChangedError
from graduate.store.schema import eval_results, test_set_versions


def set_test_set(project, **fields):
    spec_path = project / "graduate.yaml"
    raw = yaml.safe_load(spec_path.read_text())
    raw["test_sets"][0].update(fields)
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))


def add_test_item(csv_path):
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    rows.append({**{k: "0" for k in fields}, "id": "added-later", "comment_text": "A comment added to the test set later.", "subsets": "test.balanced"})
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def test_a_changed_test_set_is_refused_until_its_version_is_raised(tiny_project):
    first = Project.load(tiny_project).run()
    frozen_hash = first["test_sets"]["test.balanced"]["content_hash"]

    # someone adds an item to the test set: results before and after would not be comparable
    add_test_item(tiny_project / "comments.csv")
    with pytest.raises(TestSetChangedError) as exc:
        Project.load(tiny_project).run()
    err = exc.value
    assert (err.name, err.version, err.frozen_hash) == ("test.balanced", 1, frozen_hash)
    assert "declare a new version in graduate.yaml" in str(err) and "version: 2" in str(err)
    with pytest.raises(TestSetChangedError):  # `graduate evaluate` refuses it too
        Project.load(tiny_project).evaluate()

    set_test_set(tiny_project, version=2)
    second = Project.load(tiny_project).run()
    new_hash = second["test_sets"]["test.balanced"]["content_hash"]
    assert new_hash != frozen_hash and second["test_sets"]["test.balanced"]["n"] > first["test_sets"]["test.balanced"]["n"]

    engine = Project.load(tiny_project).engine
    with engine.connect() as conn:
        versions = conn.execute(select(test_set_versions.c.version, test_set_versions.c.content_hash).order_by(test_set_versions.c.version)).all()
        stored = {
            (r.run_id, r.test_set_version, r.test_set_hash)
            for r in conn.execute(select(eval_results.c.run_id, eval_results.c.test_set_version, eval_results.c.test_set_hash))
        }
    assert versions == [(1, frozen_hash), (2, new_hash)]
    assert (first["evaluation_run_id"], 1, frozen_hash) in stored and (second["evaluation_run_id"], 2, new_hash) in stored

    # version 2 is now frozen in turn: evaluating it again is accepted and gives the same hash
    assert Project.load(tiny_project).evaluate()["test_sets"]["test.balanced"]["content_hash"] == new_hash


def test_a_test_set_added_after_the_run_names_the_source_to_import(tiny_project, tmp_path):
    from graduate.errors import NotReadyError

    Project.load(tiny_project).run()
    statements = tiny_project / "statements.csv"
    statements.write_text("id,text,gold\ns1,I am gay.,0\ns2,Muslim people are nice.,0\n", encoding="utf-8")
    raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    raw["data"].append({"name": "statements", "path": "statements.csv", "id_column": "id", "text_column": "text", "gold_column": "gold", "gold_values": {"0": "ok", "1": "bad"}})
    raw["test_sets"].append({"name": "identity.statements", "source": "statements", "purpose": "bias"})
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(NotReadyError) as exc:
        Project.load(tiny_project).evaluate()
    assert str(exc.value) == (
        "test set 'identity.statements': data source 'statements' has no items in the store yet; "
        "`graduate run PROJECT` imports every data source of graduate.yaml"
    )
    second = Project.load(tiny_project).run()  # which imports it
    assert second["test_sets"]["identity.statements"]["n"] == 2
