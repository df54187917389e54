"""Bad input on the multi-label entry points: a gold set naming an unknown label is one line naming
the file and line before any work; an earlier labeller's spreadsheet with any text in its cells
(odd Unicode, separators, sizes) stores only valid sets and names the rest; a label import killed
with SIGKILL leaves all of its rows or none, and running it again completes it."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from graduate.errors import SpecError
from graduate.formats import labelset
from graduate.pipeline.ingest import load_data, load_label_imports
from graduate.pipeline.project import Project
from graduate.store.schema import labels as labels_table

LABELS = ["care", "loyalty", "purity"]


def make_project(root: Path, rows: int = 40, gold: dict[int, str] | None = None, columns: int = 1) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "items.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "labels", "subsets"])
        for i in range(rows):
            w.writerow([f"i{i}", f"comment number {i}", (gold or {}).get(i, LABELS[i % 3]), "test" if i % 4 == 0 else "pool"])
    spec = {
        "task": {"name": "tags", "kind": "multi_label", "labels": LABELS, "parse": {"kind": "label_list"}},
        "teacher": {"model": "m", "prompt": "{text}"},
        "data": [{"name": "items", "path": "items.csv", "id_column": "id", "gold_column": "labels", "gold_separator": ";", "tags_column": "subsets"}],
        "train": {"source": "items", "tags": ["pool"]},
        "test_sets": [{"name": "test", "source": "items", "tags": ["test"]}],
        "students": [{"kind": "tfidf-logreg"}],
        "label_imports": [{"path": "old.csv", "source": "items", "id_column": "id", "columns": [f"c{j}" for j in range(columns)], "separator": ";"}],
    }
    (root / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / "old.csv").write_text("id," + ",".join(f"c{j}" for j in range(columns)) + "\n", encoding="utf-8")
    return root


def test_a_gold_set_with_an_unknown_label_is_one_line_before_any_work(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", gold={4: "care;fairness"})
    with pytest.raises(SpecError) as err:
        Project.load(project).check_test_sets()
    msg = str(err.value)
    assert len(msg.splitlines()) == 1 and "items.csv:6: gold in column 'labels': 'care;fairness': 'fairness' is not a task label" in msg
    res = subprocess.run([sys.executable, "-m", "graduate", "check", str(project)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "'fairness'" in res.stderr


CELL = st.text(max_size=40) | st.sampled_from(
    ["care", "care;loyalty", "Care", ";", "care;;purity", "loyalty;fairness", " purity ", "\u00a0care", "care\u0000", "ℒoyalty"]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cells=st.lists(CELL, min_size=1, max_size=12))
def test_any_cell_text_stores_only_valid_sets_and_names_the_rest(tmp_path_factory, cells) -> None:
    project = make_project(tmp_path_factory.mktemp("p"), rows=12)
    with (project / "old.csv").open("w", newline="", encoding="utf-8", errors="surrogatepass") as f:
        w = csv.writer(f)
        w.writerow(["id", "c0"])
        for i, cell in enumerate(cells):
            w.writerow([f"i{i}", cell])
    proj = Project.load(project)
    load_data(proj)
    (rep,) = load_label_imports(proj)
    with proj.engine.connect() as conn:
        stored = conn.execute(select(labels_table.c.label).where(labels_table.c.labeller == "import:c0")).scalars().all()
    assert all(labelset.decode(v, LABELS) is not None for v in stored)  # only task label sets
    assert rep.added + rep.empty + len(rep.skipped) == len(cells)  # every cell accounted for
    assert all(line.startswith(f"{project / 'old.csv'}:") for line in rep.skipped)
    (again,) = load_label_imports(proj)
    assert again.added == 0 and again.unchanged == rep.added  # nothing twice


KILLED = """
import sys
from graduate.pipeline.ingest import load_data, load_label_imports
from graduate.pipeline.project import Project
proj = Project.load(sys.argv[1])
load_data(proj)
print("loaded", flush=True)
load_label_imports(proj)
print("imported", flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8])
def test_a_label_import_killed_midway_leaves_all_or_nothing(tmp_path: Path, delay: float) -> None:
    project = make_project(tmp_path / "p", rows=400, columns=40)
    with (project / "old.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", *[f"c{j}" for j in range(40)]])
        for i in range(400):
            w.writerow([f"i{i}", *[LABELS[(i + j) % 3] for j in range(40)]])
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(project)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "loaded"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proj = Project.load(project)

    def count() -> int:
        with proj.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(labels_table).where(labels_table.c.labeller.like("import:%"))).scalar_one()

    assert count() in (0, 400 * 40)  # one transaction: all of the rows or none
    (rep,) = load_label_imports(proj)
    assert count() == 400 * 40 and rep.added + rep.unchanged == 400 * 40


@pytest.mark.parametrize("with_logprobs", [False, True])
def test_self_consistency_on_label_sets_gives_each_label_its_vote_share_as_a_soft_label(tmp_path: Path, with_logprobs: bool) -> None:
    """Three recorded answers per item: the training set holds the per-label majority set, weighs
    nothing differently, and keeps each label's share of the answers as the item's soft label. With
    logprobs in the answers the vote shares still win: a label_list's logprob reading sees only the
    labels an answer started (here it would give purity 0.4)."""
    import json
    import math

    def logprobs(content: str) -> dict:
        tokens = []
        for k, word in enumerate(content.split(", ")):
            if k:
                tokens.append({"token": ",", "logprob": 0.0, "top_logprobs": [{"token": ",", "logprob": 0.0}]})
            piece = (" " if k else "") + word
            alts = [(piece, 0.6), ((" " if k else "") + "purity", 0.4)]
            tokens.append({"token": piece, "logprob": math.log(0.6), "top_logprobs": [{"token": a, "logprob": math.log(q)} for a, q in alts]})
        return {"content": tokens}

    root = tmp_path / "p"
    root.mkdir()
    topics = {"care": "protect help safe harm", "loyalty": "team nation betray flag", "purity": "clean sacred dirty pure"}
    rows, calls, outs = [], [], []
    spec_prompt = "Tags for: {text}"
    for i in range(30):
        lab = LABELS[i % 3]
        text = f"{topics[lab]} comment {i}"
        rows.append([f"i{i}", text, lab, "pool"])
        # answers: the item's label every time; loyalty added once in three for care items
        answers = [lab, lab, f"{lab}, loyalty" if lab == "care" else lab]
        for run, content in enumerate(answers):
            cid = f"pool/i{i}/run{run}"
            calls.append({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                          "body": {"model": "m", "messages": [{"role": "user", "content": spec_prompt.replace("{text}", text)}], "temperature": 0.7,
                                   **({"logprobs": True, "top_logprobs": 2} if with_logprobs else {})}})
            choice = {"index": 0, "message": {"role": "assistant", "content": content}}
            if with_logprobs:
                choice["logprobs"] = logprobs(content)
            outs.append({"custom_id": cid, "response": {"status_code": 200, "body": {"choices": [choice]}}, "error": None})
    rows += [[f"t{j}", f"{topics[LABELS[j % 3]]} held out {j}", LABELS[j % 3], "test"] for j in range(6)]
    with (root / "items.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "text", "labels", "subsets"], *rows])
    (root / "in.jsonl").write_text("\n".join(json.dumps(c) for c in calls) + "\n", encoding="utf-8")
    (root / "out.jsonl").write_text("\n".join(json.dumps(o) for o in outs) + "\n", encoding="utf-8")
    spec = {
        "task": {"name": "tags", "kind": "multi_label", "labels": LABELS, "parse": {"kind": "label_list"}},
        "teacher": {"model": "m", "prompt": spec_prompt, "temperature": 0.7, **({"logprobs": True, "top_logprobs": 2} if with_logprobs else {})},
        "data": [{"name": "items", "path": "items.csv", "id_column": "id", "gold_column": "labels", "gold_separator": ";", "tags_column": "subsets"}],
        "teacher_logs": [{"input": "in.jsonl", "output": "out.jsonl"}],
        "train": {"source": "items", "tags": ["pool"], "labeller": {"kind": "self_consistency"}},
        "test_sets": [{"name": "test", "source": "items", "tags": ["test"]}],
        "students": [{"kind": "tfidf-logreg"}],
    }
    (root / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    proj = Project.load(root)
    proj.import_logs()
    proj.load_data()
    ds = proj.build_training_set()
    assert len(ds.examples) == 30 and ds.soft_labels is not None
    by_text = {ex.text: (lab, soft) for ex, lab, soft in zip(ds.examples, ds.labels, ds.soft_labels)}
    lab, soft = by_text["protect help safe harm comment 0"]
    assert lab == "care" and soft == pytest.approx({"care": 1.0, "loyalty": 1 / 3, "purity": 0.0})  # loyalty: 1 of 3 answers
    lab, soft = by_text["team nation betray flag comment 1"]
    assert lab == "loyalty" and soft == pytest.approx({"care": 0.0, "loyalty": 1.0, "purity": 0.0})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cells=st.lists(CELL | st.sampled_from(["(none)", "(none);care", "purity;care"]), min_size=1, max_size=12))
def test_any_corrected_set_in_a_review_file_stores_only_valid_sets_and_names_the_rest(tmp_path_factory, cells) -> None:
    """The review queue's import on a multi-label project: any text in corrected_label stores a
    canonical task label set or is skipped with its file:line; importing again adds nothing."""
    from graduate.data.review import import_review
    from graduate.store.schema import examples as examples_table

    project = make_project(tmp_path_factory.mktemp("p"), rows=12)
    proj = Project.load(project)
    load_data(proj)
    with proj.engine.connect() as conn:
        ids = conn.execute(select(examples_table.c.id).order_by(examples_table.c.id)).scalars().all()
    path = project / "reviewed.csv"
    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as f:
        w = csv.writer(f)
        w.writerow(["example_id", "corrected_label", "reviewer"])
        for ex_id, cell in zip(ids, cells):
            w.writerow([ex_id, cell, "ana"])
    rep = import_review(proj.engine, path, LABELS, multi_label=True)
    with proj.engine.connect() as conn:
        stored = conn.execute(select(labels_table.c.label).where(labels_table.c.kind == "human")).scalars().all()
    assert all(labelset.decode(v, LABELS) is not None and labelset.encode(labelset.decode(v, LABELS), LABELS) == v for v in stored)
    assert rep.added + rep.not_reviewed + len(rep.skipped) == len(cells)
    assert all(line.startswith(f"{path}:") and "\n" not in line for line in rep.skipped)
    again = import_review(proj.engine, path, LABELS, multi_label=True)
    assert again.added == 0 and again.unchanged == rep.added


def test_a_reviewers_set_past_parse_max_labels_is_skipped_naming_the_row_the_set_and_the_cap(tmp_path: Path) -> None:
    # A teacher's answer with more labels than parse.max_labels is a parse failure; a reviewer's set
    # with as many was stored silently, and trained on.
    from graduate.store.schema import examples as examples_table

    project = make_project(tmp_path / "p", rows=8)
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    spec["task"]["parse"]["max_labels"] = 2
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    proj = Project.load(project)
    load_data(proj)
    with proj.engine.connect() as conn:
        ids = conn.execute(select(examples_table.c.id).order_by(examples_table.c.id)).scalars().all()
    path = project / "reviewed.csv"
    path.write_text(f"example_id,corrected_label,reviewer\n{ids[0]},purity;care;loyalty,ana\n{ids[1]},care;loyalty,ana\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"} | {"COLUMNS": "300"}
    r = subprocess.run([sys.executable, "-m", "graduate", "data", "review", "import", str(project), str(path)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{path}:2: corrected_label 'care;loyalty;purity' has 3 labels, more than parse.max_labels 2 allows" in " ".join(r.stderr.split())
    with proj.engine.connect() as conn:
        stored = conn.execute(select(labels_table.c.example_id, labels_table.c.label).where(labels_table.c.kind == "human")).all()
    assert stored == [(ids[1], "care;loyalty")]


def test_a_cell_of_only_separators_is_named_not_stored_as_the_empty_set(tmp_path: Path) -> None:
    """';' (or ' ; ;') names no label: it was stored as the empty set, '(none)' (a gold set the
    student was scored against, an earlier labeller's and a reviewer's "no label applies"), where
    the spelling of the empty set is (none) and an empty cell is no label at all."""
    from graduate.data.review import import_review
    from graduate.store.schema import examples as examples_table

    project = make_project(tmp_path / "p", rows=8, gold={4: " ; ;"})
    with pytest.raises(SpecError) as err:  # item 4 is a test item: caught before any work
        Project.load(project).check_test_sets()
    assert len(str(err.value).splitlines()) == 1 and "items.csv:6: gold in column 'labels': '; ;' names no label" in str(err.value)
    (project / "old.csv").write_text("id,c0\ni0,;\ni1,care\n", encoding="utf-8")
    proj = Project.load(project)
    (loaded,) = load_data(proj)
    assert [s for s in loaded.report.skipped if ":6:" in s] == [f"{project / 'items.csv'}:6: gold in column 'labels': '; ;' names no label; write (none) for the empty set"]
    (rep,) = load_label_imports(proj)
    assert rep.skipped == [f"{project / 'old.csv'}:2: column 'c0': ';' names no label; write (none) for the empty set"]
    with proj.engine.connect() as conn:
        ids = conn.execute(select(examples_table.c.id).order_by(examples_table.c.id)).scalars().all()
    path = project / "reviewed.csv"
    path.write_text(f"example_id,corrected_label,reviewer\n{ids[0]},;,ana\n{ids[1]},(none),ana\n", encoding="utf-8")
    review = import_review(proj.engine, path, LABELS, multi_label=True)
    assert review.skipped == [f"{path}:2: corrected_label ';' names no label; write (none) for the empty set"] and review.added == 1
    with proj.engine.connect() as conn:
        stored = conn.execute(select(labels_table.c.labeller, labels_table.c.label).where(labels_table.c.labeller.in_(["human:ana", "import:c0"]))).all()
    assert sorted(stored) == [("human:ana", "(none)"), ("import:c0", "care")]


# (gold cell, its set): read as review files, label imports and feedback read a set (labelset.read_cell)
GOLD_CELLS = [
    ("Care; Loyalty", "care;loyalty"),  # any case, spaces around the separator
    ("purete\u0301", "puret\u00e9"),  # the label written decomposed (as a Mac may save it)
    ("care\u200b", "care"),  # a zero-width space a spreadsheet left at its edge
    ("Nothing", labelset.NONE),  # the task's parse.none word, in any case: the empty set
    ("(none)", labelset.NONE),
    ("loyalty;care", "care;loyalty"),
]


def test_a_gold_cell_is_read_as_every_other_label_set_cell(tmp_path: Path) -> None:
    """The data's gold sets and the test-set check had readers of their own, stricter than the
    one review files, label imports and feedback share: `Care; Loyalty`, a decomposed label, a
    zero-width space and the task's parse.none word made a gold row skipped and a test set refused
    (SpecError) where a reviewer's cell said the same set. A cell naming no task label is still
    refused by both, naming the file, line and column."""
    from graduate.pipeline.ingest import read_source

    labels = ["care", "loyalty", "puret\u00e9"]
    project = make_project(tmp_path / "p", rows=len(GOLD_CELLS), gold=dict(enumerate(c for c, _ in GOLD_CELLS)))
    spec = yaml.safe_load((project / "graduate.yaml").read_text(encoding="utf-8"))
    spec["task"]["labels"] = labels
    spec["task"]["parse"]["none"] = "nothing"
    spec["test_sets"] = [{"name": "test", "source": "items"}]  # every row: each cell checked before any work
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    proj = Project.load(project)
    proj.check_test_sets()
    items, report = read_source(proj.spec, proj.spec.data[0])
    assert [(it.external_id, it.gold) for it in items] == [(f"i{i}", want) for i, (_, want) in enumerate(GOLD_CELLS)]
    assert report.skipped == []

    with (project / "items.csv").open("a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(["bad", "a comment", "Care;purity", "test"])  # line 8: 'purity' is no label here
    with pytest.raises(SpecError) as err:
        Project.load(project).check_test_sets()
    where = f"{project / 'items.csv'}:{len(GOLD_CELLS) + 2}: gold in column 'labels': "
    assert len(str(err.value).splitlines()) == 1
    assert where + "'Care;purity': 'purity' is not a task label ['care', 'loyalty', 'puret\u00e9']; add it to task.labels or map it with data[items].gold_values" in str(err.value)
    items, report = read_source(proj.spec, proj.spec.data[0])
    assert len(items) == len(GOLD_CELLS) and report.skipped == [where + "'Care;purity': 'purity' is not a task label ['care', 'loyalty', 'puret\u00e9']; add it to task.labels or map it with the source's gold_values"]


def test_a_gold_cell_under_gold_values_keeps_its_meaning(tmp_path: Path) -> None:
    """With gold_values, a piece is read through the map: a task label the map does not name is no
    label (as before, and as a label import's values read it), and (none) is still the empty set."""
    from graduate.pipeline.ingest import read_source

    cells = {0: "yes_care; YES_LOYALTY", 1: "(none)", 2: "yes_purity", 3: "care"}
    project = make_project(tmp_path / "p", rows=4, gold=cells)
    spec = yaml.safe_load((project / "graduate.yaml").read_text(encoding="utf-8"))
    spec["data"][0]["gold_values"] = {"yes_care": "care", "YES_LOYALTY": "loyalty", "yes_purity": "purity"}
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    proj = Project.load(project)
    items, report = read_source(proj.spec, proj.spec.data[0])
    assert [(it.external_id, it.gold) for it in items] == [("i0", "care;loyalty"), ("i1", labelset.NONE), ("i2", "purity")]
    assert report.skipped == [f"{project / 'items.csv'}:5: gold in column 'labels': 'care' is not a task label ['care', 'loyalty', 'purity']; map it with the source's gold_values, which every piece goes through when it is set"]


def test_predicts_empty_set_cells_are_named_by_a_label_import_never_read_as_the_empty_set_unsaid(tmp_path: Path) -> None:
    """`graduate predict` writes the empty set as an empty `labels` cell; a label import of that file
    read the cell as no label (and removed what the column had given before), saying nothing. An empty
    cell stays no answer (the rule on every path; `(none)` is the empty set): predict counts the rows
    it gives no label, and the import names each such cell of predict's output with the fix."""
    from graduate.data.import_labels import import_labels
    from graduate.spec import LabelImportSpec
    from graduate.students.csv_predict import predict_csv
    from test_multilabel_edges import make_project as trained_project

    project = trained_project(tmp_path / "p", ["care", "equality", "loyalty"], {"kind": "label_list", "none": "none"})
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    raw["students"] = [{"kind": "tfidf-logreg"}]
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw))
    Project.load(project).run()
    proj = Project.load(project)
    student, _ = proj.best_student()
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:  # i0: care; i3: no label (filler); i4: empty text
        csv.writer(f).writerows([["id", "text"], ["i0", "w0a w0b item 0"], ["i3", "item 3 filler"], ["i4", " "]])
    out = tmp_path / "scored.csv"
    report = predict_csv(student, src, out, text_column="text")
    shown = subprocess.run([sys.executable, "-m", "graduate", "predict", str(project), "-i", str(src), "-o", str(tmp_path / "cli.csv")], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and (tmp_path / "cli.csv").read_bytes() == out.read_bytes(), shown.stderr
    assert (
        "1 rows given no label (the empty set) have an empty labels cell (input lines 3); an import (label_imports, a review file)"
        " reads an empty cell as no answer: write (none) there to import the empty set"
    ) in " ".join(shown.stdout.split())
    with out.open(newline="", encoding="utf-8") as f:
        scored = {r["id"]: r for r in csv.DictReader(f)}
    assert scored["i0"]["labels"] == "care" and scored["i3"]["labels"] == "" and scored["i4"]["labels"] == ""
    assert report.no_label == 1 and report.no_label_rows == [3] and report.empty == 1  # i3: the empty set; i4: no answer

    spec = LabelImportSpec(path=out, source="items", id_column="id", columns=["labels"], separator=";")
    rep = import_labels(proj.engine, spec, proj.spec.task)
    assert rep.added == 1 and rep.empty == 1  # i0 stored; i4's empty text is no answer
    assert rep.skipped == [
        f"{out}:3: column 'labels': empty, which in `graduate predict`'s output is the empty set; an empty cell is no label here, so write (none) in it to import the empty set"
    ]
    # written as the import asks, predict's empty set round-trips
    rows = [dict(r, labels=r["labels"] or ("(none)" if r["p_care"] else "")) for r in scored.values()]
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    again = import_labels(proj.engine, spec, proj.spec.task)
    assert again.skipped == [] and again.added == 1 and again.unchanged == 1
    with proj.engine.connect() as conn:
        stored = conn.execute(select(labels_table.c.label).where(labels_table.c.labeller == "import:labels")).scalars().all()
    assert sorted(stored) == ["(none)", "care"]


def test_a_huge_label_set_cell_is_named_in_a_short_line_not_echoed_whole(tmp_path: Path) -> None:
    """A cell of a megabyte (a text pasted into corrected_label, a column shifted by one) was named
    whole in its one-line message: `graduate data review import` printed a megabyte to the terminal,
    as a label import's skipped list and POST /v1/feedback's 422 did. The message names the start of
    the cell and its length (as a teacher's unknown answer word is cut), with the file and line."""
    from graduate.data.review import import_review
    from graduate.store.schema import examples as examples_table

    project = make_project(tmp_path / "p", rows=8)
    huge = "fairness " * 120_000  # ~1 MB
    with (project / "old.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "c0"], ["i0", huge], ["i1", "care;" + huge], ["i2", "care"]])
    proj = Project.load(project)
    load_data(proj)
    (rep,) = load_label_imports(proj)
    assert rep.added == 1 and len(rep.skipped) == 2
    assert all(len(line) < 400 for line in rep.skipped), [len(line) for line in rep.skipped]
    assert rep.skipped[0].startswith(f"{project / 'old.csv'}:2: column 'c0': 'fairness fairness ") and "(1,079,999 characters) is not a task label ['care', 'loyalty', 'purity']" in rep.skipped[0]
    assert rep.skipped[1].startswith(f"{project / 'old.csv'}:3: column 'c0': 'care;fairness ") and "is not a task label ['care', 'loyalty', 'purity']" in rep.skipped[1]

    with proj.engine.connect() as conn:
        ids = conn.execute(select(examples_table.c.id).order_by(examples_table.c.id)).scalars().all()
    path = project / "reviewed.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["example_id", "corrected_label", "reviewer"], [ids[0], huge, "ana"], [ids[1], ";" * 500_000, "ana"], [ids[2], "loyalty", "ana"]])
    review = import_review(proj.engine, path, LABELS, multi_label=True)
    assert review.added == 1 and len(review.skipped) == 2 and all(len(line) < 400 for line in review.skipped), [len(line) for line in review.skipped]
    assert review.skipped[1].startswith(f"{path}:3: corrected_label ';;;;") and "(500,000 characters) names no label; write (none) for the empty set" in review.skipped[1]
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"} | {"COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "graduate", "data", "review", "import", str(project), str(path)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 1 and len(r.stdout) + len(r.stderr) < 5000, (len(r.stdout), len(r.stderr))
