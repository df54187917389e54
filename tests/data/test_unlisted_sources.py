"""A data source renamed or removed from graduate.yaml's data: its stored items are marked absent
as a deleted row's are (left out of builds and test sets, nothing deleted, back when it is listed
again), and the recipe, `graduate run` and `graduate status` say so. Real SQLite stores."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from graduate.data import augment, build
from graduate.data.examples import MADE_SOURCES, absent_examples, from_data_file
from graduate.errors import TestSetChangedError
from graduate.evaluate.testsets import load_test_set
from graduate.pipeline.project import Project
from graduate.store.schema import examples, labels
from teacher.live_teacher import cli_env


def _split(project: Path) -> set[str]:
    """Two data sources over the tiny comments: jigsaw keeps the even rows, extra.csv holds the odd
    ones; train and test draw from every source. Returns the ids extra holds."""
    with (project / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for name, part in (("comments.csv", rows[::2]), ("extra.csv", rows[1::2])):
        with (project / name).open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(part)
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    raw["data"].append({**raw["data"][0], "name": "extra", "path": "./extra.csv"})
    raw["train"]["source"] = None
    raw["test_sets"][0]["source"] = None
    _save(project, raw)
    return {r["id"] for r in rows[1::2]}


def _save(project: Path, raw: dict) -> None:  # type: ignore[type-arg]
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def _counts(proj: Project) -> tuple[int, int]:
    with proj.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(examples)).scalar_one(), conn.execute(select(func.count()).select_from(labels)).scalar_one()


def test_a_source_removed_from_the_spec_leaves_the_build_and_the_test_set_and_comes_back_when_listed(tiny_project: Path) -> None:
    extra_ids = _split(tiny_project)
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    first = proj.build_training_set()
    (test,) = proj.load_test_sets()
    from_extra = {ex.id for ex in first.examples if ex.source == "extra"}
    in_test = sum(ex.source == "extra" for ex in test.examples)
    assert from_extra and in_test and {ex.external_id for ex in first.examples if ex.source == "extra"} <= extra_ids
    stored = _counts(proj)

    raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    listed = raw["data"]
    raw["data"] = listed[:1]
    _save(tiny_project, raw)
    proj = Project.load(tiny_project)
    jigsaw, extra = proj.load_data()
    assert (jigsaw.name, jigsaw.listed, jigsaw.absent) == ("jigsaw", True, 0)
    assert (extra.name, extra.listed, extra.absent, extra.added) == ("extra", False, len(extra_ids), 0)
    second = proj.build_training_set()
    assert not {ex for ex in second.examples if ex.source == "extra"} and len(second.examples) == len(first.examples) - len(from_extra)
    step = next(s for s in second.recipe["steps"] if s["step"] == "not_in_file")
    assert step["dropped"] == len(absent_examples(proj.engine, source="extra", tags=["train*"])) >= len(from_extra) and "a source no longer listed under data:" in step["reason"]
    with pytest.raises(TestSetChangedError, match=rf"41 items, hash [0-9a-f]+ -> {41 - in_test} items"):  # frozen: as for deleted rows
        proj.load_test_sets()
    assert len(load_test_set(proj.engine, proj.spec.test_sets[0]).examples) == 41 - in_test
    assert _counts(proj) == stored  # nothing deleted

    raw["data"] = listed  # listed again: the same items count again, nothing added twice
    _save(tiny_project, raw)
    proj = Project.load(tiny_project)
    jigsaw, extra = proj.load_data()
    assert (extra.listed, extra.absent, extra.back, extra.added) == (True, 0, len(extra_ids), 0)
    assert proj.build_training_set().content_hash == first.content_hash
    assert proj.load_test_sets()[0].content_hash == test.content_hash and _counts(proj) == stored


def test_a_renamed_source_does_not_count_its_items_twice(tiny_project: Path) -> None:
    extra_ids = _split(tiny_project)
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    first = proj.build_training_set()
    raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    raw["data"][1]["name"] = "more"
    _save(tiny_project, raw)
    proj = Project.load(tiny_project)
    jigsaw, more, extra = proj.load_data()
    assert (more.name, more.added, extra.name, extra.listed, extra.absent) == ("more", len(extra_ids), "extra", False, len(extra_ids))
    renamed = proj.build_training_set()
    assert len(renamed.examples) == len(first.examples) and renamed.content_hash == first.content_hash  # the same texts and labels, once
    assert {ex.source for ex in renamed.examples} == {"jigsaw", "more"}


def test_sources_graduate_fills_itself_are_never_taken_for_removed_data_files() -> None:
    assert set(MADE_SOURCES) == {augment.SOURCE, *build.FEEDBACK_SOURCES, "proxy"}
    assert not from_data_file("label:new_rows") and from_data_file("jigsaw")


def test_run_and_status_name_a_source_no_longer_listed(trained_copy: Path) -> None:
    raw = yaml.safe_load((trained_copy / "graduate.yaml").read_text())
    proj = Project.load(trained_copy)
    with proj.engine.begin() as conn:  # items an earlier spec's source [old] held
        conn.execute(examples.update().where(examples.c.id.in_(select(examples.c.id).order_by(examples.c.id).limit(3))).values(source="[red]old"))
    proj.engine.dispose()
    raw["test_sets"][0]["version"] = 2  # the three come back under jigsaw, in another order
    _save(trained_copy, raw)
    env = {**cli_env(), "COLUMNS": "300"}
    run = subprocess.run([sys.executable, "-m", "graduate", "run", str(trained_copy)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "data [red]old: no longer listed under data: in graduate.yaml; its 3 stored items are left out of training and test sets" in run.stdout
    status = subprocess.run([sys.executable, "-m", "graduate", "status", str(trained_copy)], capture_output=True, text=True, env=env, timeout=120)
    assert status.returncode == 0 and re.search(r"examples of \[red\]old, a source no longer listed under data: .* +│ +3 │", status.stdout), status.stdout


def _review(proj: Project, path: Path, rows: list[tuple[str, str]]) -> None:
    from graduate.data.review import import_review

    path.write_text("source,external_id,corrected_label,reviewer\n" + "".join(f"jigsaw,{i},{lab},ann\n" for i, lab in rows), encoding="utf-8")
    assert import_review(proj.engine, path, proj.spec.task.labels).added == len(rows)


def test_reviews_follow_their_text_when_the_id_column_changes(tiny_project: Path, tmp_path: Path) -> None:
    """Reviewers' labels stayed on the old ids: after an id_column change the new items had none,
    and the build silently trained on the teacher's labels the reviewers had corrected."""
    from graduate.data.review import human_labels

    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    first = proj.build_training_set()
    reviewed = [(first.examples[i].external_id, "ok" if first.labels[i] == "bad" else "bad") for i in range(3)]
    _review(proj, tmp_path / "review.csv", reviewed)
    corrected = proj.build_training_set()
    assert next(s for s in corrected.recipe["steps"] if s["step"] == "human_labels")["changed"] == 3

    raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    del raw["data"][0]["id_column"]  # ids are row numbers now: every item a new id
    raw["test_sets"][0]["version"] = 2
    _save(tiny_project, raw)
    proj = Project.load(tiny_project)
    (loaded,) = proj.load_data()
    assert loaded.absent == 161 and loaded.reviews_carried == 3
    by_row = proj.build_training_set()
    assert next(s for s in by_row.recipe["steps"] if s["step"] == "human_labels")["changed"] == 3
    assert by_row.content_hash == corrected.content_hash  # the reviewers' labels, not the teacher's
    texts = {first.examples[i].text for i in range(3)}
    new_ids = [ex.id for ex in by_row.examples if ex.text in texts]
    assert sorted(lab for lab, _ in human_labels(proj.engine, new_ids).values()) == sorted(lab for _, lab in reviewed)
    (again,) = proj.load_data()  # carried once
    assert again.reviews_carried == 0


def test_status_names_reviews_no_present_item_carries(tiny_project: Path, tmp_path: Path) -> None:
    from graduate.data.examples import orphaned_reviews

    proj = Project.load(tiny_project)
    proj.load_data()
    with (tiny_project / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    _review(proj, tmp_path / "review.csv", [(rows[0]["id"], "bad"), (rows[1]["id"], "ok")])
    assert orphaned_reviews(proj.engine) == 0
    with (tiny_project / "comments.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[1:])
    proj.load_data()
    assert orphaned_reviews(proj.engine) == 1
    env = {**cli_env(), "COLUMNS": "300"}
    status = subprocess.run([sys.executable, "-m", "graduate", "status", str(tiny_project)], capture_output=True, text=True, env=env, timeout=120)
    assert status.returncode == 0 and re.search(r"reviewers' labels of items no longer in a data file, no present item of the same text \(unused; kept\) +│ +1 │", status.stdout), status.stdout


def test_a_review_of_an_old_id_imported_after_the_change_follows_its_text(tiny_project: Path, tmp_path: Path) -> None:
    """A review queue exported before an id_column change, imported after it: its labels went onto
    the old (absent) items only, and the build at once trained on the teacher's label instead."""
    from graduate.data.review import human_labels, import_review

    proj = Project.load(tiny_project)
    proj.load_data()
    with (tiny_project / "comments.csv").open(newline="", encoding="utf-8") as f:
        first = next(csv.DictReader(f))
    raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    del raw["data"][0]["id_column"]
    _save(tiny_project, raw)
    proj = Project.load(tiny_project)
    proj.load_data()
    review = tmp_path / "review.csv"
    review.write_text(f"source,external_id,corrected_label,reviewer\njigsaw,{first['id']},bad,ann\n", encoding="utf-8")
    rep = import_review(proj.engine, review, proj.spec.task.labels)
    assert (rep.added, rep.not_in_file, rep.carried) == (1, 1, 1)
    with proj.engine.connect() as conn:
        now_id = conn.execute(select(examples.c.id).where(examples.c.source == "jigsaw", examples.c.external_id == "1")).scalar_one()
    assert human_labels(proj.engine, [now_id]) == {now_id: ("bad", "human:ann")}


def test_a_review_whose_text_only_an_item_graduate_made_holds_counts_as_orphaned(tiny_project: Path, tmp_path: Path) -> None:
    """Only a data file's item takes a carried review; one the feedback route holds does not, and the
    review was then neither carried nor counted."""
    from graduate.data.examples import examples_for_texts, orphaned_reviews

    proj = Project.load(tiny_project)
    proj.load_data()
    with (tiny_project / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    _review(proj, tmp_path / "review.csv", [(rows[0]["id"], "bad")])
    with (tiny_project / "comments.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[1:])
    proj.load_data()
    (made,) = examples_for_texts(proj.engine, "feedback", [rows[0]["comment_text"]], reuse_absent=False)
    assert made.source == "feedback"
    (again,) = proj.load_data()
    assert again.reviews_carried == 0 and orphaned_reviews(proj.engine) == 1


def test_a_later_review_of_an_old_id_reaches_the_item_its_text_was_carried_to(tiny_project: Path, tmp_path: Path) -> None:
    """The first review of an old id was carried onto the present item of its text; a re-review of
    the old id with another label stayed on the old item, and the build kept the first label."""
    from graduate.data.review import human_labels, import_review
    from graduate.store.schema import label_changes

    proj = Project.load(tiny_project)
    proj.load_data()
    with (tiny_project / "comments.csv").open(newline="", encoding="utf-8") as f:
        first = next(csv.DictReader(f))
    _review(proj, tmp_path / "review.csv", [(first["id"], "bad")])
    raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    del raw["data"][0]["id_column"]
    _save(tiny_project, raw)
    proj = Project.load(tiny_project)
    assert proj.load_data()[0].reviews_carried == 1
    with proj.engine.connect() as conn:
        now_id = conn.execute(select(examples.c.id).where(examples.c.source == "jigsaw", examples.c.external_id == "1")).scalar_one()
    assert human_labels(proj.engine, [now_id]) == {now_id: ("bad", "human:ann")}

    again = tmp_path / "again.csv"
    again.write_text(f"source,external_id,corrected_label,reviewer\njigsaw,{first['id']},ok,ann\n", encoding="utf-8")
    rep = import_review(proj.engine, again, proj.spec.task.labels)
    assert (rep.changed, rep.not_in_file, rep.carried) == (1, 1, 1)
    assert human_labels(proj.engine, [now_id]) == {now_id: ("ok", "human:ann")}
    with proj.engine.connect() as conn:
        logged = conn.execute(select(label_changes.c.old_label, label_changes.c.new_label, label_changes.c.origin).where(label_changes.c.example_id == now_id)).all()
    assert [(o, n) for o, n, _ in logged] == [(None, "bad"), ("bad", "ok")] and all(origin.startswith("carried from example ") for *_, origin in logged)
    assert proj.load_data()[0].reviews_carried == 0  # carried once

    direct = tmp_path / "direct.csv"  # the present item's own later review wins over the old id's
    direct.write_text("source,external_id,corrected_label,reviewer\njigsaw,1,bad,ann\n", encoding="utf-8")
    assert import_review(proj.engine, direct, proj.spec.task.labels).changed == 1
    assert proj.load_data()[0].reviews_carried == 0 and human_labels(proj.engine, [now_id]) == {now_id: ("bad", "human:ann")}
