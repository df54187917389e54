"""The review queue round trip on the tiny project: export suspects, a reviewer corrects some,
import them as human labels that win over the teacher's; bad rows are counted skips."""

import csv
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from graduate import Project
from graduate.data.examples import labels_for
from graduate.data.review import ReviewImport, csv_cell, from_cell, import_review, queue_rows, teacher_disagreements, write_queue
from graduate.errors import InputDataError
from graduate.store.schema import label_changes
from quality_project import edit_spec


def _project(tiny_project: Path) -> Project:
    edit_spec(tiny_project, clean={"label_issues": {"action": "report", "folds": 3, "params": {"max_iter": 300}}})
    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    return proj


def _export(proj: Project, path: Path) -> list[dict]:
    ds = proj.build_training_set(name="train.review")
    gold = labels_for(proj.engine, [ex.id for ex in ds.examples], kind="gold")
    rows = queue_rows(proj.spec, ds, gold, teacher_disagreements(proj.engine, proj.spec, ds.examples))
    write_queue(path, rows, proj.spec.task.labels)
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_review_round_trip(tiny_project, tmp_path):
    proj = _project(tiny_project)
    queue = _export(proj, tmp_path / "queue.csv")
    assert queue and {r["group"] for r in queue} <= {"label_issue", "teacher_disagreement"}
    # the same columns as `graduate errors` writes
    from graduate.data.review import review_columns

    assert list(queue[0]) == review_columns(["ok", "bad"])
    issues = [r for r in queue if r["group"] == "label_issue"]
    assert issues and all(r["student_label"] and r["p_bad"] for r in issues)

    flip = {"ok": "bad", "bad": "ok"}
    reviewed = [dict(r) for r in queue[:4]]
    for r in reviewed:
        r["corrected_label"], r["reviewer"] = flip[r["teacher_label"]], "ann"
    bad = dict(queue[0], corrected_label="maybe", reviewer="ann")
    unknown = dict(queue[0], example_id="999999", corrected_label="ok", reviewer="ann")
    mismatch = dict(queue[0], external_id="not-this-one", corrected_label="ok", reviewer="ann")
    not_a_number = dict(queue[0], example_id="abc", corrected_label="ok", reviewer="ann")
    untouched = dict(queue[-1], corrected_label="")
    _write(tmp_path / "reviewed.csv", reviewed + [bad, unknown, mismatch, not_a_number, untouched])
    rep = import_review(proj.engine, tmp_path / "reviewed.csv", proj.spec.task.labels)
    assert (rep.added, rep.changed, rep.unchanged, rep.not_reviewed, rep.overrides_teacher) == (4, 0, 0, 1, 4)
    assert len(rep.skipped) == 4
    text = "\n".join(rep.skipped)
    assert all("reviewed.csv:" in line for line in rep.skipped)
    assert "corrected_label 'maybe' is not a task label" in text and "example_id 999999 is not in the store" in text
    assert "not-this-one" in text and "example_id 'abc' is not a number" in text
    # in file order, each at the line where its row begins (a quoted text may span lines)
    numbers = [int(m.split("reviewed.csv:")[1].split(":")[0]) for m in rep.skipped]
    assert numbers == sorted(numbers), rep.skipped
    physical = (tmp_path / "reviewed.csv").read_text(encoding="utf-8").split("\n")
    for number, row in zip(numbers, [bad, unknown, mismatch, not_a_number]):
        assert physical[number - 1].startswith(f"{row['example_id']},"), (number, physical[number - 1][:40])

    # the corrections win over the teacher's labels in the next build, and the recipe says so
    ds = proj.build_training_set()
    labels = dict(zip([ex.id for ex in ds.examples], ds.labels))
    for r in reviewed:
        assert labels[int(r["example_id"])] == r["corrected_label"]
    step = next(s for s in ds.recipe["steps"] if s["step"] == "human_labels")
    assert step["changed"] == 4 and {c[0] for c in step["changes"]} == {int(r["example_id"]) for r in reviewed}
    issues_step = next(s for s in ds.recipe["steps"] if s["step"] == "label_issues")
    assert not {c[0] for c in issues_step["ranked"]} & {int(r["example_id"]) for r in reviewed}  # reviewed items are trusted

    # importing the same file again changes nothing; a changed answer is recorded, not silently overwritten
    again = import_review(proj.engine, tmp_path / "reviewed.csv", proj.spec.task.labels)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 4)
    reviewed[0]["corrected_label"] = reviewed[0]["teacher_label"]
    _write(tmp_path / "second.csv", reviewed[:1])
    third = import_review(proj.engine, tmp_path / "second.csv", proj.spec.task.labels)
    assert third.changed == 1
    with proj.engine.connect() as conn:
        change = conn.execute(select(label_changes)).mappings().one()
    assert (change["example_id"], change["labeller"], change["old_label"], change["new_label"]) == (
        int(reviewed[0]["example_id"]), "human:ann", flip[reviewed[0]["teacher_label"]], reviewed[0]["teacher_label"]
    )
    assert change["origin"].startswith("review import ") and "second.csv:" in change["origin"]


def _terminal(name: str) -> bool:
    """A name a terminal would act on: a control character or a bidi override."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" for c in name)


def test_a_reviewer_name_with_control_characters_is_a_skipped_row_and_ordinary_names_are_kept(tiny_project, tmp_path):
    """A reviewer's name is stored as labeller human:NAME and printed later: an ESC sequence there
    would rewrite a maintainer's terminal. Such rows (and a name too long for the store) are skipped
    with their line; a bad --reviewer stops the import; "José" and "李雷" are kept as written."""
    proj = _project(tiny_project)
    queue = _export(proj, tmp_path / "queue.csv")
    names = ["ev\x1b]0;owned\x07il\x1b[2J", "a\u202eb", "two\u2028lines", "x" * 295, "José", "李雷", "x" * 294]
    assert len(queue) >= len(names)
    rows = [{"example_id": r["example_id"], "corrected_label": r["teacher_label"], "reviewer": n} for r, n in zip(queue, names)]
    _write(tmp_path / "reviewed.csv", rows)
    rep = import_review(proj.engine, tmp_path / "reviewed.csv", proj.spec.task.labels)
    assert rep.added == 3
    assert [s.split("reviewed.csv:")[1].split(":")[0] for s in rep.skipped] == ["2", "3", "4", "5"]
    assert all(s.isprintable() and "reviewer " in s for s in rep.skipped), rep.skipped
    assert "holds control character U+001B" in rep.skipped[0] and "U+202E" in rep.skipped[1] and "at most 294" in rep.skipped[3]
    for r, who in zip(rows[4:], ["José", "李雷", "x" * 294]):
        ex_id = int(r["example_id"])
        assert labels_for(proj.engine, [ex_id], kind="human", labeller=f"human:{who}") == {ex_id: r["corrected_label"]}
    plain = [dict(r, reviewer="") for r in rows[:1]]
    _write(tmp_path / "plain.csv", plain)
    with pytest.raises(InputDataError, match=r"reviewer.*--reviewer holds control character U\+001B"):
        import_review(proj.engine, tmp_path / "plain.csv", proj.spec.task.labels, reviewer="\x1b[31mred")


def test_review_file_without_the_needed_columns_is_an_error(tiny_project, tmp_path):
    proj = _project(tiny_project)
    (tmp_path / "x.csv").write_text("id,label\n1,ok\n")
    with pytest.raises(InputDataError, match="no 'example_id' column"):
        import_review(proj.engine, tmp_path / "x.csv", ["ok", "bad"])
    (tmp_path / "y.csv").write_text("example_id,corrected_label\n1,ok\n")
    with pytest.raises(InputDataError, match="no 'reviewer' column and no --reviewer"):
        import_review(proj.engine, tmp_path / "y.csv", ["ok", "bad"])
    assert import_review(proj.engine, tmp_path / "y.csv", ["ok", "bad"], reviewer="bo").added == 1


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(["=cmd()", "'=x", "''+1", "-care", "@SUM(A1)", "\t=1", "'", "''"]))
def test_a_review_cell_never_starts_a_formula_and_imports_back_as_written(text):
    cell = csv_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert from_cell(cell) == text


def test_a_guarded_cell_is_read_back_on_import(tiny_project, tmp_path):
    proj = _project(tiny_project)
    queue = _export(proj, tmp_path / "queue.csv")
    flipped = {"ok": "bad", "bad": "ok"}[queue[0]["teacher_label"]]
    row = dict(queue[0], corrected_label=flipped, reviewer=csv_cell("@ann"))  # as the queue would write it
    _write(tmp_path / "reviewed.csv", [row])
    rep = import_review(proj.engine, tmp_path / "reviewed.csv", proj.spec.task.labels)
    assert rep.added == 1 and rep.skipped == []
    ex_id = int(row["example_id"])
    assert labels_for(proj.engine, [ex_id], kind="human", labeller="human:@ann") == {ex_id: flipped}


def test_a_review_file_kept_with_the_project_is_imported_by_run_once(tiny_project, tmp_path):
    # reviews: in graduate.yaml; rows name items by source and external_id (no store ids), so the
    # file works in any copy of the project. A second run adds nothing; bad rows are named.
    with (tiny_project / "comments.csv").open(newline="", encoding="utf-8") as f:
        pool = [r for r in csv.DictReader(f) if r["subsets"].startswith("train")][:6]
    flip = {"0": "bad", "1": "ok"}
    rows = [{"source": "jigsaw", "external_id": r["id"], "corrected_label": flip[r["is_bad"]], "reviewer": "ann"} for r in pool]
    rows += [
        {"source": "jigsaw", "external_id": "no-such-id", "corrected_label": "ok", "reviewer": "ann"},
        {"source": "other", "external_id": pool[0]["id"], "corrected_label": "ok", "reviewer": "ann"},
        {"source": "jigsaw", "external_id": "", "corrected_label": "ok", "reviewer": "ann"},
        {"source": "jigsaw", "external_id": pool[1]["id"], "corrected_label": "", "reviewer": ""},
    ]
    (tiny_project / "reviews").mkdir()
    _write(tiny_project / "reviews" / "checked.csv", rows)
    edit_spec(tiny_project, reviews=[{"path": "reviews/checked.csv"}], students=[{"kind": "majority"}])
    first = Project.load(tiny_project).run()
    (rv,) = first["reviews"]
    assert (rv["rows"], rv["added"], rv["changed"], rv["skipped_count"]) == (10, 6, 0, 3)
    assert "no-such-id is not in the store" in rv["skipped"][0] and "other/" in rv["skipped"][1] and "no source or external_id" in rv["skipped"][2]
    assert [int(s.split("checked.csv:")[1].split(":")[0]) for s in rv["skipped"]] == [8, 9, 10]
    step = next(s for s in first["dataset"]["recipe"]["steps"] if s["step"] == "human_labels")
    assert step["changed"] + step["confirmed"] + step["added"] == 6 and step["changed"] >= 4  # flipped gold mostly disagrees with GPT-4 too
    second = Project.load(tiny_project).run()
    (rv2,) = second["reviews"]
    assert (rv2["added"], rv2["changed"], rv2["unchanged"]) == (0, 0, 6)


def test_a_review_file_that_is_not_one_is_named_by_check(tiny_project):
    from graduate.data.inputs import check_inputs
    from graduate.errors import SpecError
    from graduate.spec import load_spec

    (tiny_project / "r.csv").write_text("id,label\n1,ok\n")
    edit_spec(tiny_project, reviews=[{"path": "r.csv"}, {"path": "missing.csv"}])
    spec, root = load_spec(tiny_project)
    with pytest.raises(SpecError) as err:
        check_inputs(spec, root / "graduate.yaml")
    text = str(err.value)
    assert "reviews[0]" in text and "r.csv is not a review file" in text and "reviews[1]" in text and "missing.csv" in text


def test_any_review_file_named_by_source_and_id_imports_its_good_rows_and_names_the_rest(tiny_project, tmp_path):
    # Odd Unicode in every cell, ids that exist and ids that do not: the known (source, id) rows
    # with a task label become human labels once; every other row is skipped with its own line.
    from hypothesis import HealthCheck
    from hypothesis import settings as hsettings

    proj = _project(tiny_project)
    with (tiny_project / "comments.csv").open(newline="", encoding="utf-8") as f:
        known = [r["id"] for r in csv.DictReader(f)][:20]
    odd = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
    row = st.fixed_dictionaries(
        {
            "source": st.sampled_from(["jigsaw"]) | odd,
            "external_id": st.sampled_from(known) | odd,
            "corrected_label": st.sampled_from(["ok", "bad"]) | odd,
            "reviewer": st.sampled_from(["ann"]) | odd,
        }
    )
    counter = iter(range(10**6))

    @hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(row, min_size=1, max_size=8))
    def check(rows):
        path = tmp_path / f"r{next(counter)}.csv"
        _write(path, rows)
        rep = import_review(proj.engine, path, proj.spec.task.labels)
        read = [{k: from_cell(v).strip() for k, v in r.items()} for r in rows]  # as the importer reads a cell (formula guard off)
        good = [r for r in read if r["source"] == "jigsaw" and r["external_id"] in known and r["corrected_label"] in ("ok", "bad") and r["reviewer"] and not _terminal(r["reviewer"])]
        blank = [r for r in read if not r["corrected_label"]]
        assert rep.rows == len(rows) and rep.not_reviewed == len(blank)
        assert rep.added + rep.changed + rep.unchanged == len(good)
        assert len(rep.skipped) == len(rows) - len(good) - len(blank)
        assert all(s.startswith(f"{path}:") for s in rep.skipped)

    check()


REVIEW_IDS = ["1", "2", "3", "9223372036854775807", "9223372036854775808", "99999999999999999999999", "1_0", "١", "１", "+1", "-1", " 7 ", "abc", ""]


def test_any_review_file_imports_or_names_each_row_it_skips(tiny_project, tmp_path):
    """Fuzz: a review file's cells (store ids past 64 bits, digits int() reads but a person would
    not write, odd Unicode) are imported or skipped by line, never an internal error; every row is
    counted once. An id past 64 bits was an OverflowError from the store's query, and "1_0" was read
    as item 10."""
    proj = Project.load(tiny_project)
    proj.load_data()
    cell = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8) | st.sampled_from(["ok", "bad", "'=ok", "ann"])
    rows = st.lists(st.tuples(st.sampled_from(REVIEW_IDS) | cell, st.sampled_from(["ok", "bad", "", "maybe"]) | cell, cell), max_size=6)
    counter = iter(range(10**6))

    def imported(rows: list[tuple[str, str, str]]) -> ReviewImport:
        path = tmp_path / f"r{next(counter)}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["example_id", "corrected_label", "reviewer"])
            w.writerows(rows)
        rep = import_review(proj.engine, path, ["ok", "bad"], reviewer="bo")
        assert rep.rows == len(rows)
        assert rep.added + rep.changed + rep.unchanged + rep.not_reviewed + len(rep.skipped) == rep.rows, rep
        return rep

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(rows=rows)
    def check(rows: list[tuple[str, str, str]]) -> None:
        rep = imported(rows)
        for ex_id, label, _ in rows:
            if label.strip() in ("ok", "bad") and ex_id.strip() and not ex_id.strip().isascii():
                assert any(f"example_id {ex_id.strip()!r} is not a number" in s for s in rep.skipped), rep.skipped

    check()
    rep = imported([("99999999999999999999999", "ok", "ann"), ("1_0", "bad", "ann"), ("١", "ok", "ann"), ("2", "bad", "ann")])
    assert [s.split(".csv:")[1] for s in rep.skipped] == [
        "2: example_id 99999999999999999999999 is not in the store (was the queue exported from another project?)",
        "3: example_id '1_0' is not a number",
        "4: example_id '١' is not a number",
    ]
    assert rep.added + rep.changed + rep.unchanged == 1


def test_review_export_refuses_a_bad_out_before_any_work(tiny_project, tmp_path):
    """`data review export --out FOLDER` built the training set, then failed on a temporary file's
    name ("Is a directory", an internal error before); a --limit past 64 bits was an OverflowError;
    a filled-in queue whose example_id is past 64 bits was an OverflowError too, and the refusal
    named --output, an option export does not have."""
    from typer.testing import CliRunner

    from graduate.cli.app import app

    runner = CliRunner()
    folder = runner.invoke(app, ["data", "review", "export", str(tiny_project), "--out", str(tmp_path)])
    assert isinstance(folder.exception, InputDataError) and "is a folder; give a file name for the output" in str(folder.exception)
    huge = runner.invoke(app, ["data", "review", "export", str(tiny_project), "--out", str(tmp_path / "q.csv"), "--limit", "99999999999999999999"])
    assert huge.exit_code == 2 and "--limit" in huge.output, huge.output
    filled = tmp_path / "filled.csv"
    filled.write_text("example_id,corrected_label,reviewer\n99999999999999999999,ok,ann\n1_0,bad,ann\n", encoding="utf-8")
    kept = runner.invoke(app, ["data", "review", "export", str(tiny_project), "--out", str(filled)])
    assert isinstance(kept.exception, InputDataError), repr(kept.exception)
    assert "holds 2 reviewed rows" in str(kept.exception) and "or give --out another file" in str(kept.exception)
    assert filled.read_text(encoding="utf-8").count("\n") == 3  # left as the reviewer wrote it


def test_a_reviewer_stored_under_an_unstripped_name_is_the_same_reviewer_on_reimport(tiny_project, tmp_path):
    # reviews[].reviewer " alice " was stored as labeller "human: alice " before names were stripped;
    # the re-import of the same file stored "human:alice" as a second human label for each item.
    from graduate.store.db import now
    from graduate.store.schema import labels as labels_table

    proj = _project(tiny_project)
    queue = _export(proj, tmp_path / "queue.csv")
    same, other = int(queue[0]["example_id"]), int(queue[1]["example_id"])
    flip = {"ok": "bad", "bad": "ok"}
    with proj.engine.begin() as conn:
        for ex_id, lab in ((same, queue[0]["teacher_label"]), (other, queue[1]["teacher_label"])):
            conn.execute(labels_table.insert().values(example_id=ex_id, kind="human", labeller="human: alice ", label=lab, created_at=now()))
    rows = [
        {"example_id": same, "corrected_label": queue[0]["teacher_label"], "reviewer": ""},  # as stored: unchanged
        {"example_id": other, "corrected_label": flip[queue[1]["teacher_label"]], "reviewer": ""},  # a new answer: changed
    ]
    _write(tmp_path / "reviewed.csv", rows)
    rep = import_review(proj.engine, tmp_path / "reviewed.csv", proj.spec.task.labels, reviewer="alice")
    assert (rep.added, rep.unchanged, rep.changed) == (0, 1, 1)
    with proj.engine.connect() as conn:
        stored = conn.execute(select(labels_table.c.example_id, labels_table.c.label).where(labels_table.c.kind == "human")).all()
        changes = conn.execute(select(label_changes.c.example_id, label_changes.c.old_label, label_changes.c.new_label)).all()
    assert sorted(stored) == sorted([(same, queue[0]["teacher_label"]), (other, flip[queue[1]["teacher_label"]])])
    assert changes == [(other, queue[1]["teacher_label"], flip[queue[1]["teacher_label"]])]
    again = import_review(proj.engine, tmp_path / "reviewed.csv", proj.spec.task.labels, reviewer="alice")
    assert (again.added, again.unchanged, again.changed) == (0, 2, 0)
