"""Earlier labellers' labels from a spreadsheet (label_imports): joined to items by id, stored once,
a changed cell replaces the stored label with a record, bad cells and unknown ids named by line;
their figures against gold appear beside the teacher's."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from graduate.errors import InputDataError, SpecError
from graduate.pipeline.ingest import load_data, load_label_imports
from graduate.pipeline.project import Project
from graduate.store.schema import examples, label_changes, labels


def _ids(project: Path) -> list[str]:
    with (project / "comments.csv").open(newline="", encoding="utf-8") as f:
        return [r["id"] for r in csv.DictReader(f)]


def _write(path: Path, rows: list[tuple[str, str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["item", "old model", "older model"])
        w.writerows(rows)


def _with_import(project: Path, **extra) -> None:
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    spec["label_imports"] = [{"path": "old.csv", "source": "jigsaw", "id_column": "item", "columns": ["old model", "older model"], "values": {"0": "ok", "1": "bad"}, **extra}]
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def test_earlier_labels_import_once_and_the_file_wins(tiny_project: Path) -> None:
    ids = _ids(tiny_project)
    _write(tiny_project / "old.csv", [(ids[0], "1", "0"), (ids[1], "0", ""), ("no-such-id", "1", "1"), (ids[2], "maybe", "1")])
    _with_import(tiny_project)
    proj = Project.load(tiny_project)
    load_data(proj)
    (rep,) = load_label_imports(proj)
    assert (rep.rows, rep.added, rep.empty) == (4, 4, 1)
    assert rep.skipped == [
        f"{tiny_project / 'old.csv'}:4: id 'no-such-id' is no item of data source 'jigsaw'",
        f"{tiny_project / 'old.csv'}:5: column 'old model': 'maybe' is no label of ['ok', 'bad']",
    ]
    (again,) = load_label_imports(proj)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 4)  # nothing twice

    _write(tiny_project / "old.csv", [(ids[0], "0", "0"), (ids[1], "0", "")])
    (changed,) = load_label_imports(proj)
    assert (changed.added, changed.changed, changed.removed) == (0, 1, 1)  # ids[2]'s row is gone: its 'older model' label goes too
    with proj.engine.connect() as conn:
        stored = conn.execute(select(labels.c.label).where(labels.c.labeller == "import:old model")).scalars().all()
        log = conn.execute(select(label_changes.c.old_label, label_changes.c.new_label, label_changes.c.labeller)).all()
    assert log == [("bad", "ok", "import:old model"), ("bad", None, "import:older model")] and sorted(stored) == ["ok", "ok"]


def test_a_label_the_file_no_longer_gives_no_longer_counts(tiny_project: Path) -> None:
    """An emptied cell, a deleted row, or an item the file now labels twice differently ("neither is
    kept") kept its earlier stored label, which went on counting in the labeller's figures."""
    ids = _ids(tiny_project)
    _write(tiny_project / "old.csv", [(ids[0], "1", "1"), (ids[1], "0", "1"), (ids[2], "1", "0")])
    _with_import(tiny_project)
    proj = Project.load(tiny_project)
    load_data(proj)
    (first,) = load_label_imports(proj)
    assert first.added == 6
    _write(tiny_project / "old.csv", [(ids[0], "", "1"), (ids[1], "0", "1"), (ids[1], "1", "1")])  # ids[2] deleted
    (again,) = load_label_imports(proj)
    assert again.removed == 4  # ids[0] old model (emptied), ids[1] old model (twice, differently), ids[2] both
    with proj.engine.connect() as conn:
        stored = set(conn.execute(select(labels.c.example_id, labels.c.labeller)).all())
        log = conn.execute(select(label_changes.c.new_label, label_changes.c.origin)).all()
        by_ext = dict(conn.execute(select(examples.c.external_id, examples.c.id)).all())
    assert {(by_ext[ids[0]], "import:older model"), (by_ext[ids[1]], "import:older model")} <= stored
    assert not {(by_ext[i], "import:old model") for i in ids[:3]} & stored and (by_ext[ids[2]], "import:older model") not in stored
    assert len(log) == 4 and all(new is None and "the file no longer gives it" in origin for new, origin in log)


def test_their_figures_appear_beside_the_teachers(tiny_project: Path) -> None:
    ids = _ids(tiny_project)
    _write(tiny_project / "old.csv", [(i, "0", "1") for i in ids])  # one says ok to all, the other bad
    _with_import(tiny_project)
    summary = Project.load(tiny_project).run()
    figs = summary["test_sets"]["test.balanced"]["labellers"]
    gold_ok = summary["test_sets"]["test.balanced"]["label_counts"]["ok"] / summary["test_sets"]["test.balanced"]["n"]
    assert figs["import:old model"]["accuracy"] == pytest.approx(gold_ok) and figs["import:older model"]["accuracy"] == pytest.approx(1 - gold_ok)
    assert summary["label_imports"][0]["added"] == 2 * len(ids)


def test_bad_files_and_specs_are_one_line(tiny_project: Path) -> None:
    _write(tiny_project / "old.csv", [])
    _with_import(tiny_project, columns=["old model", "newest model"])
    proj = Project.load(tiny_project)
    with pytest.raises(InputDataError, match=r"no column 'newest model'; the columns are \['item', 'old model', 'older model'\]"):
        load_label_imports(proj)
    with pytest.raises(SpecError, match=r"label_imports\[0\]: old.csv has no column 'newest model'"):
        Project.load(tiny_project).check_test_sets()  # checked before any work
    _with_import(tiny_project, separator=";")
    with pytest.raises(SpecError, match=r"label_imports\[0\]: separator is set for multi-label tasks"):
        Project.load(tiny_project)


def test_an_item_labelled_twice_differently_keeps_neither_and_a_repeated_column_is_refused(tiny_project: Path) -> None:
    # The last row used to win silently; a header naming a column twice was read from the last one.
    ids = _ids(tiny_project)
    _write(tiny_project / "old.csv", [(ids[0], "1", "0"), (ids[1], "0", "0"), (ids[0], "0", "0"), (ids[1], "0", "0"), (ids[0], "1", "0")])
    _with_import(tiny_project)
    proj = Project.load(tiny_project)
    load_data(proj)
    (rep,) = load_label_imports(proj)
    path = tiny_project / "old.csv"
    assert rep.skipped == [f"{path}:4: column 'old model': id '{ids[0]}' is 'bad' at line 2 and 'ok' here; neither is kept"]
    with proj.engine.connect() as conn:
        stored = dict(conn.execute(select(labels.c.labeller, labels.c.label).where(labels.c.labeller == "import:old model")).all())
    assert rep.added == 3 and stored == {"import:old model": "ok"}  # only ids[1]; 'older model' agrees with itself
    (path).write_text(f"item,old model,old model,older model\n{ids[0]},1,0,0\n")
    with pytest.raises(InputDataError, match=r"old.csv:1 \(column 'old model'\): the header names column 'old model' more than once"):
        load_label_imports(proj)
    with pytest.raises(SpecError, match=r"label_imports\[0\]: old.csv names column 'old model' more than once"):
        Project.load(tiny_project).check_test_sets()


def test_one_labeller_spread_over_two_files_keeps_both_halves(tiny_project: Path) -> None:
    """Two label_imports naming the same column are one labeller: neither file removes what the other gives."""
    ids = _ids(tiny_project)
    _write(tiny_project / "old.csv", [(ids[0], "1", "0")])
    _write(tiny_project / "old2.csv", [(ids[1], "0", "1")])
    spec = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    one = {"source": "jigsaw", "id_column": "item", "columns": ["old model", "older model"], "values": {"0": "ok", "1": "bad"}}
    spec["label_imports"] = [{"path": "old.csv", **one}, {"path": "old2.csv", **one}]
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    proj = Project.load(tiny_project)
    load_data(proj)
    for _ in range(2):
        reports = load_label_imports(proj)
        assert [r.removed for r in reports] == [0, 0]
    with proj.engine.connect() as conn:
        assert len(conn.execute(select(labels.c.id).where(labels.c.labeller.like("import:%"))).all()) == 4


def test_any_label_import_file_stores_only_task_labels_and_names_the_rest(tiny_project: Path) -> None:
    """Fuzz a label_imports CSV: ids that are no item, cells that are no label (odd Unicode, empty,
    the empty set's spelling), an item given twice. Every stored label is a task label; every row is
    imported, empty or named; importing the same file again adds and changes nothing."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    ids = _ids(tiny_project)[:4]
    _with_import(tiny_project)
    proj = Project.load(tiny_project)
    load_data(proj)
    cell = st.sampled_from(["0", "1", "", " 1 ", "ok", "(none)", "2"]) | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
    row = st.tuples(st.sampled_from(ids) | st.sampled_from(["", "no-such-id", " " + ids[0]]) | st.text(max_size=4), cell, cell)

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(rows=st.lists(row, max_size=6))
    def check(rows: list[tuple[str, str, str]]) -> None:
        _write(tiny_project / "old.csv", rows)
        (rep,) = load_label_imports(proj)
        assert rep.rows == len(rows)
        assert all(line.startswith(f"{tiny_project / 'old.csv'}:") for line in rep.skipped)
        wanted: dict[tuple[str, str], str] = {}
        twice: set[tuple[str, str]] = set()
        for ext, *cells in rows:
            for col, value in zip(["old model", "older model"], cells):
                key, lab = (ext.strip(), col), {"0": "ok", "1": "bad"}.get(value.strip())
                if ext.strip() not in ids or lab is None or key in twice:
                    continue
                if wanted.setdefault(key, lab) != lab:  # the same item labelled two ways: neither is kept
                    twice.add(key)
                    del wanted[key]
        with proj.engine.connect() as conn:
            stored = {
                (ext, who.removeprefix("import:")): lab
                for ext, who, lab in conn.execute(
                    select(examples.c.external_id, labels.c.labeller, labels.c.label).join(examples, examples.c.id == labels.c.example_id).where(labels.c.labeller.like("import:%"))
                )
            }
        assert set(stored.values()) <= {"ok", "bad"}
        assert stored == wanted  # and a label an earlier draw gave that this file no longer gives is gone
        (again,) = load_label_imports(proj)
        assert (again.added, again.changed) == (0, 0)

    check()


def test_rows_naming_items_no_longer_in_the_data_file_are_counted_and_named_by_run(trained_copy: Path) -> None:
    """After the data source's id_column changed, a label import still keyed by the old ids joined
    only absent items: every row imported, none compared with anything, and nothing said so."""
    import subprocess
    import sys

    from teacher.live_teacher import cli_env

    with (trained_copy / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ids = [r["id"] for r in rows if "test" not in r["subsets"]]  # the frozen test set stays as it is
    _write(trained_copy / "old.csv", [(ids[0], "1", "0"), (ids[1], "0", "1")])
    _with_import(trained_copy)
    proj = Project.load(trained_copy)
    load_data(proj)
    assert load_label_imports(proj)[0].not_in_file == 0
    with (trained_copy / "comments.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["id"] != ids[0])
    load_data(proj)
    (rep,) = load_label_imports(proj)
    assert (rep.rows, rep.not_in_file, rep.skipped) == (2, 1, [])
    run = subprocess.run([sys.executable, "-m", "graduate", "run", str(trained_copy)], capture_output=True, text=True, env=cli_env(), timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "label import old.csv: 1 of 2 rows name items no longer in their data file (is its id_column the data source's?)" in run.stdout
