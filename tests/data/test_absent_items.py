"""Rows deleted from a data file, or an id_column changed: each data file's items are the ones the
file holds now. Items it no longer holds are left out of builds, test sets and selections, and the
recipe and `graduate status` say how many and why; nothing of theirs is deleted (labels, reviews,
teacher calls), and they count again when the rows come back. Real SQLite stores throughout."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from graduate.errors import InputDataError, TestSetChangedError
from graduate.evaluate.testsets import load_test_set
from graduate.pipeline.project import Project
from graduate.store.schema import examples, labels
from teacher.live_teacher import cli_env


def _rows(project: Path) -> list[dict[str, str]]:
    with (project / "comments.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write(project: Path, rows: list[dict[str, str]]) -> None:
    with (project / "comments.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _counts(proj: Project) -> tuple[int, int]:
    with proj.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(examples)).scalar_one(), conn.execute(select(func.count()).select_from(labels)).scalar_one()


def test_rows_deleted_from_the_data_file_leave_the_build_and_the_test_set_and_come_back_with_their_rows(tiny_project: Path) -> None:
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    first = proj.build_training_set()
    (test,) = proj.load_test_sets()
    rows = _rows(tiny_project)
    gone_train = {r["id"] for r in rows if "train" in r["subsets"]} & {ex.external_id for ex in first.examples}
    gone_train = set(sorted(gone_train)[:10])
    gone_test = {ex.external_id for ex in test.examples[:5]}
    stored = _counts(proj)

    _write(tiny_project, [r for r in rows if r["id"] not in gone_train | gone_test])
    (loaded,) = proj.load_data()
    assert len(gone_train) == 10 and loaded.absent == 15 and loaded.added == 0
    second = proj.build_training_set()
    assert not gone_train & {ex.external_id for ex in second.examples}
    assert len(second.examples) == len(first.examples) - 10
    step = next(s for s in second.recipe["steps"] if s["step"] == "not_in_file")
    assert step["dropped"] == 10 and "no longer in their data file" in step["reason"]
    assert {ex.external_id for ex in first.examples if ex.id in set(step["removed"])} == gone_train
    with pytest.raises(TestSetChangedError, match="41 items, hash [0-9a-f]+ -> 36 items"):  # frozen: a smaller set is another version
        proj.load_test_sets()
    smaller = load_test_set(proj.engine, proj.spec.test_sets[0])
    assert len(smaller.examples) == len(test.examples) - 5 and not gone_test & {ex.external_id for ex in smaller.examples}
    assert _counts(proj) == stored  # nothing deleted: their labels and gold stay

    _write(tiny_project, rows)  # the rows come back: the same items, nothing added twice
    (again,) = proj.load_data()
    assert again.absent == 0 and again.back == 15 and again.added == 0
    assert proj.build_training_set().content_hash == first.content_hash
    assert proj.load_test_sets()[0].content_hash == test.content_hash and _counts(proj) == stored


def test_a_changed_id_column_does_not_double_the_test_set_or_the_training_set(tiny_project: Path) -> None:
    """Keyed by row number first, then by the id column: both sets of ids stood, every item twice."""
    path = tiny_project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    del raw["data"][0]["id_column"]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    by_row = proj.build_training_set()
    (test,) = proj.load_test_sets()

    raw["data"][0]["id_column"] = "id"
    raw["test_sets"][0]["version"] = 2  # other ids: the frozen set's hash changes
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(tiny_project)
    proj.import_logs()
    (loaded,) = proj.load_data()
    assert loaded.added == 161 and loaded.absent == 161
    by_id = proj.build_training_set()
    (retest,) = proj.load_test_sets()
    assert len(retest.examples) == len(test.examples) and all(ex.external_id != str(i) for i, ex in enumerate(retest.examples, 1))
    assert len(by_id.examples) == len(by_row.examples) and by_id.content_hash == by_row.content_hash  # the same texts and labels


def test_run_and_status_say_how_many_items_were_left_out_and_why(trained_copy: Path) -> None:
    rows = _rows(trained_copy)
    _write(trained_copy, [r for r in rows if "train" not in r["subsets"] or int(r["id"], 16) % 4])
    left = sum("train" in r["subsets"] and not int(r["id"], 16) % 4 for r in rows)
    env = {**cli_env(), "COLUMNS": "300"}
    run = subprocess.run([sys.executable, "-m", "graduate", "run", str(trained_copy)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"data jigsaw: {left} stored items are no longer in comments.csv: left out of training and test sets" in run.stdout
    assert f"dropped {left}: no longer in their data file" in run.stdout
    status = subprocess.run([sys.executable, "-m", "graduate", "status", str(trained_copy)], capture_output=True, text=True, env=env, timeout=120)
    assert status.returncode == 0 and re.search(rf"examples of jigsaw no longer in its data file \(left out of training and test sets; labels kept\) +│ +{left} │", status.stdout), status.stdout


def test_copies_made_from_an_item_no_longer_in_its_file_leave_with_it(trained_copy: Path) -> None:
    path = trained_copy / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["augment"] = {"term_lists": {"identity": ["you", "they", "we", "people"]}, "counterfactual": {"per_item": 2}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(trained_copy)
    proj.augment(kind="counterfactual")
    built = proj.build_training_set()
    copies = {ex.id: ex for ex in built.examples if ex.source == "augment"}
    assert copies
    with proj.engine.connect() as conn:
        parent_of = {ex: lin["parent"] for ex, lin in conn.execute(select(examples.c.id, examples.c.lineage).where(examples.c.id.in_(list(copies))))}
        parent_id = conn.execute(select(examples.c.external_id).where(examples.c.id == next(iter(parent_of.values())))).scalar_one()
    _write(trained_copy, [r for r in _rows(trained_copy) if r["id"] != parent_id])
    proj.load_data()
    after = proj.build_training_set()
    orphans = {ex for ex, p in parent_of.items() if p == parent_of[next(iter(parent_of))]}
    assert orphans and not orphans & {ex.id for ex in after.examples}
    step = next(s for s in after.recipe["steps"] if s["step"] == "made_from_absent")
    assert set(step["removed"]) == orphans


def test_a_row_deleted_from_a_file_without_id_column_names_the_fix(tiny_project: Path) -> None:
    """Ids are row numbers there: a deleted row shifts every later one, and the refusal said "give
    the edited row a new id", which such a file cannot do."""
    path = tiny_project / "graduate.yaml"
    raw = yaml.safe_load(path.read_text())
    del raw["data"][0]["id_column"]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    Project.load(tiny_project).load_data()
    rows = _rows(tiny_project)
    _write(tiny_project, rows[:10] + rows[11:])
    with pytest.raises(InputDataError, match=r"id '11' .* no id_column, so its ids are row numbers, and a row deleted or inserted above shifts them: set data\[\]\.id_column"):
        Project.load(tiny_project).load_data()
    raw["data"][0]["id_column"] = "id"  # the fix it names
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    (loaded,) = Project.load(tiny_project).load_data()
    assert loaded.added == 160 and loaded.absent == 161


def test_a_review_of_items_no_longer_in_their_file_says_they_stay_out(tiny_project: Path, tmp_path: Path) -> None:
    from graduate.data.review import import_review

    proj = Project.load(tiny_project)
    proj.load_data()
    rows = _rows(tiny_project)
    _write(tiny_project, rows[1:])
    proj.load_data()
    review = tmp_path / "review.csv"
    review.write_text(f"source,external_id,corrected_label,reviewer\njigsaw,{rows[0]['id']},bad,ann\njigsaw,{rows[1]['id']},ok,ann\n", encoding="utf-8")
    rep = import_review(proj.engine, review, proj.spec.task.labels)
    assert rep.added == 2 and rep.not_in_file == 1


def test_label_does_not_label_an_item_no_longer_in_its_data_file(tiny_project: Path, tmp_path: Path) -> None:
    """`graduate label --input FILE` reused the stored item of a text whatever its state: a row
    deleted from the data file got a teacher label (and a paid call) silently."""
    from servers import fake_openai_server
    from teacher.live_teacher import point_teacher
    from teacher.test_label_keys import label, row_value, write_items

    proj = Project.load(tiny_project)
    proj.load_data()
    rows = _rows(tiny_project)
    _write(tiny_project, rows[1:])
    proj.load_data()
    items = write_items(tmp_path / "new" / "items.csv", [("1", rows[0]["comment_text"]), ("2", "a brand new text to label")])
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url)
        result = label(tiny_project, items)
    assert result.returncode == 0, result.stderr
    assert row_value(result.stdout, "not labelled (item no longer in its data file)") == 1
    assert row_value(result.stdout, "distinct requests") == 1
    assert "1 rows not labelled: their text is an item no longer in its data file" in result.stderr
    with proj.engine.connect() as conn:
        gone = conn.execute(select(examples.c.id).where(examples.c.source == "jigsaw", examples.c.external_id == rows[0]["id"])).scalar_one()
        kinds = set(conn.execute(select(labels.c.kind).where(labels.c.example_id == gone)).scalars())
    assert "teacher" not in kinds


def test_feedback_on_a_text_taken_out_of_its_data_file_joins_the_next_build(tiny_project: Path) -> None:
    """POST /v1/feedback on a served text whose only stored item was deleted from its data file put
    the person's label on that absent item: no build ever saw it (README: it wins in the next build)."""
    from graduate.data.review import record_feedback

    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    rows = _rows(tiny_project)
    row = next(r for r in rows if "train" in r["subsets"])
    _write(tiny_project, [r for r in rows if r is not row])
    proj.load_data()
    status, ex_id, _ = record_feedback(proj.engine, row["comment_text"], "bad", "alice", origin="test")
    assert status == "added"
    with proj.engine.connect() as conn:
        assert conn.execute(select(examples.c.source, examples.c.absent_since).where(examples.c.id == ex_id)).one() == ("feedback", None)
    built = proj.build_training_set()
    by_text = {ex.text: (lab, who) for ex, lab, who in zip(built.examples, built.labels, built.producers)}
    assert by_text[row["comment_text"]] == ("bad", "human:alice")


def test_an_id_back_in_its_file_with_another_text_is_refused_as_a_returning_id(tiny_project: Path) -> None:
    """A row deleted (its item absent) and an id reused later for another text was refused as "an
    edited row" of a stored item: the file holds no such row. It is refused as an edited present row
    is (one id never stands for two texts), saying the id was taken out and what to do; nothing is
    added or lost, and the old item keeps its labels."""
    proj = Project.load(tiny_project)
    proj.load_data()
    rows = _rows(tiny_project)
    _write(tiny_project, rows[1:])
    proj.load_data()
    stored = _counts(proj)
    _write(tiny_project, [{**rows[0], "comment_text": "a whole new text under an old id"}, *rows[1:]])
    with pytest.raises(InputDataError) as err:
        proj.load_data()
    msg = str(err.value)
    assert f"id {rows[0]['id']!r} of data source 'jigsaw' was taken out of its data file (absent since " in msg, msg
    assert "is back with another text (from character 1: " in msg and "now 'a whole new text under an old id'" in msg
    assert msg.endswith("give this row an id not used before (or put the old text back)") and "edited row" not in msg
    assert _counts(proj) == stored
    _write(tiny_project, [{**rows[0], "id": "fresh-id", "comment_text": "a whole new text under an old id"}, *rows[1:]])  # the fix it names
    (loaded,) = proj.load_data()
    assert loaded.added == 1 and loaded.absent == 1 and _counts(proj)[0] == stored[0] + 1
