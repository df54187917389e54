"""Multi-label projects at their edges, end to end through the CLI on small synthetic projects
(three labels, 80 items, every fifth one in `test`, every fourth with no label): a teacher with no
answers on the test set, gold sets that are empty, labels the answer format could not read back."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml


def graduate(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=300, env=env)


def make_project(
    root: Path, labels: list[str], parse: dict, *, teacher_on_test: bool = True, empty_gold: str = "(none)", teacher_test_answers: int | None = None
) -> Path:
    """Items whose text names their labels' two words each; the teacher (a recorded Batch log)
    answers every item right, in the `parse` format (on `test`: none without `teacher_on_test`, the
    first `teacher_test_answers` given that); the gold CSV spells the empty set `empty_gold`."""
    root.mkdir(parents=True, exist_ok=True)
    words = {lab: [f"w{i}a", f"w{i}b"] for i, lab in enumerate(labels)}
    rows, calls, answers = [], [], []
    for i in range(80):
        k = i % (len(labels) + 1)
        chosen = [] if k == len(labels) else [labels[k]]
        if i % 7 == 0 and chosen:
            chosen.append(labels[(k + 1) % len(labels)])
        text = " ".join(w for lab in chosen for w in words[lab]) + f" item {i}" + ("" if chosen else " filler")
        subset = "test" if i % 5 == 0 else "pool"
        rows.append([f"i{i}", text, ";".join(chosen) if chosen else empty_gold, subset])
        if subset == "test" and (not teacher_on_test or (teacher_test_answers is not None and i // 5 >= teacher_test_answers)):
            continue
        cid = f"{subset}/i{i}/run0"
        calls.append({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": f"Tags: {text}"}], "temperature": 0}})
        said = ", ".join(chosen) if chosen else parse.get("none", "")
        answers.append({"custom_id": cid, "response": {"status_code": 200, "body": {"choices": [{"index": 0, "message": {"role": "assistant", "content": said}}]}}, "error": None})
    with (root / "items.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "text", "labels", "subsets"], *rows])
    (root / "in.jsonl").write_text("".join(json.dumps(c) + "\n" for c in calls), encoding="utf-8")
    (root / "out.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers), encoding="utf-8")
    spec = {
        "task": {"name": "t", "kind": "multi_label", "labels": labels, "parse": parse},
        "teacher": {"model": "m", "prompt": "Tags: {text}"},
        "data": [{"name": "items", "path": "items.csv", "id_column": "id", "gold_column": "labels", "gold_separator": ";", "tags_column": "subsets"}],
        "teacher_logs": [{"input": "in.jsonl", "output": "out.jsonl"}],
        "train": {"source": "items", "tags": ["pool"]},
        "test_sets": [{"name": "test", "source": "items", "tags": ["test"]}],
        "students": [{"kind": "majority"}, {"kind": "tfidf-logreg"}],
    }
    (root / "graduate.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return root


LABEL_WORDS = {"kind": "label_list", "none": "none"}


def test_a_teacher_without_answers_on_the_test_set_is_reported_not_a_crash(tmp_path: Path) -> None:
    """It crashed `run`, `evaluate` and `report` in the report template (no interval level)."""
    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS, teacher_on_test=False)
    r = graduate("run", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    flat = " ".join(r.stdout.split())
    assert "teacher scored on 0 answered items (0 unparseable, 16 without an answer)" in flat, flat
    assert "agreement w/ teacher │ – │" in flat, flat  # agrees with nothing it never answered
    summary = json.loads((project / ".graduate" / "summary.json").read_text())
    assert summary["test_sets"]["test"]["teacher"]["answered"] == 0
    assert summary["test_sets"]["test"]["students"]["tfidf-logreg"]["micro_f1"] > 0.9
    for step in ("evaluate", "report", "errors"):
        r = graduate(step, str(project))
        assert r.returncode == 0 and "Traceback" not in r.stderr, (step, r.stdout + r.stderr)
    assert "95% bootstrap confidence intervals" in (project / ".graduate" / "report.html").read_text(encoding="utf-8")


def test_agreement_over_a_few_teacher_answers_is_not_shown_as_a_figure(tmp_path: Path) -> None:
    """The teacher answered 3 of the 16 test items (as 4-5 of the bias sets' 1,492): the students'
    agreement with it was shown as a full figure (1.000) though it rests on 3 items."""
    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS, teacher_test_answers=3)
    r = graduate("run", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    flat = " ".join(r.stdout.split())
    assert "teacher: 3 answers of 16 items, too few to score it or the students' agreement with it" in flat, flat
    assert "agreement w/ teacher │ – │ – │ – │" in flat, flat
    figs = json.loads((project / ".graduate" / "summary.json").read_text())["test_sets"]["test"]["students"]["tfidf-logreg"]
    assert (figs["agreement_with_teacher"], figs["agreement_items"]) == (None, 3)
    assert figs["micro_f1"] > 0.9  # its figures against gold stand


def test_gold_sets_may_be_empty_and_an_empty_cell_is_said_to_be_unscored(tmp_path: Path) -> None:
    """`(none)` in a gold cell is the empty set and is scored; an empty cell is no gold, and the
    results table says how many of the set's items that left out (it silently shrank before)."""
    spelled = make_project(tmp_path / "spelled", ["alpha", "beta", "gamma"], LABEL_WORDS)
    r = graduate("run", str(spelled))
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads((spelled / ".graduate" / "summary.json").read_text())
    test = summary["test_sets"]["test"]
    assert test["n"] == 16 and test["without_gold"] == 0 and "without gold" not in r.stdout
    assert test["teacher"]["exact_match"] == 1.0  # its "none" answers match the 4 empty gold sets

    blank = make_project(tmp_path / "blank", ["alpha", "beta", "gamma"], LABEL_WORDS, empty_gold="")
    r = graduate("run", str(blank))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test: 12 items (4 more without gold, not scored)" in r.stdout, r.stdout
    assert json.loads((blank / ".graduate" / "summary.json").read_text())["test_sets"]["test"]["without_gold"] == 4

    mapped = make_project(tmp_path / "mapped", ["alpha", "beta", "gamma"], LABEL_WORDS, empty_gold="nothing")
    spec = yaml.safe_load((mapped / "graduate.yaml").read_text())
    spec["data"][0]["gold_values"] = {"alpha": "alpha", "beta": "beta", "gamma": "gamma", "nothing": "(none)"}
    (mapped / "graduate.yaml").write_text(yaml.safe_dump(spec))
    r = graduate("run", str(mapped))
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((mapped / ".graduate" / "summary.json").read_text())["test_sets"]["test"]["n"] == 16


def test_the_empty_set_beside_labels_in_a_gold_cell_is_one_line_naming_the_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    path = project / "items.csv"
    rows = list(csv.reader(path.open(newline="", encoding="utf-8")))
    rows[1][2] = "(none);alpha"  # item i0, in `test`
    rows[2][2] = "beta;(none)"  # item i1, in `pool`
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    r = graduate("check", str(project))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    msg = " ".join(r.stderr.split())
    assert "items.csv:2: gold in column 'labels': '(none)' stands for the empty set, so it cannot go with labels ('(none);alpha')" in msg, msg
    rows[1][2] = "alpha"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    r = graduate("run", str(project))  # the pool row is skipped and said, with its line
    assert r.returncode == 0, r.stdout + r.stderr
    assert "items.csv:3: gold in column 'labels': '(none)' stands for the empty set, so it cannot go with labels" in " ".join(r.stdout.split())


def test_the_specs_empty_set_spelling_is_the_label_sets_one() -> None:
    from graduate.formats.labelset import NONE
    from graduate.spec.task import EMPTY_SET

    assert EMPTY_SET == NONE


def test_reviewers_sets_for_unparsed_answers_are_said_to_be_added_back(tmp_path: Path) -> None:
    """Without parse.none the teacher's empty answers do not parse; a reviewer's `(none)` for them
    trains. The run said only "dropped 16: teacher answer did not parse"; now it also says what came back."""
    import sqlite3

    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], {"kind": "label_list"}, empty_gold="")
    r = graduate("run", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    flat = " ".join(r.stdout.split())
    assert "dropped 16: teacher answer did not parse" in flat and "added 16" not in flat, flat
    empty = [f"i{i}" for i in range(80) if i % 4 == 3 and i % 5]
    with sqlite3.connect(project / ".graduate" / "graduate.db") as db:
        ids = [db.execute("SELECT id FROM examples WHERE external_id = ?", (e,)).fetchone()[0] for e in empty]
    queue = project / "review.csv"
    queue.write_text("example_id,corrected_label,reviewer\n" + "".join(f"{i},(none),ana\n" for i in ids), encoding="utf-8")
    r = graduate("data", "review", "import", str(project), str(queue), "--reviewer", "ana")
    assert r.returncode == 0, r.stdout + r.stderr
    r = graduate("run", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    flat = " ".join(r.stdout.split())
    assert "dropped 16: teacher answer did not parse" in flat and "added 16: a reviewer's label (graduate data review import, a reviews: file or /v1/feedback) replaces the teacher's" in flat, flat
    summary = json.loads((project / ".graduate" / "summary.json").read_text())
    assert summary["dataset"]["size"] == 64


def test_serving_a_student_that_may_answer_no_label_in_a_format_without_a_word_for_it_is_flagged(tmp_path: Path) -> None:
    """Its chat answer for the empty set is "" (graduate's parser reads that as a failure): the
    server says so at start (`app.state.unwritable_none`, printed by `graduate serve`)."""
    import sqlite3

    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from servers.graduate_server import options

    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], {"kind": "label_list"}, empty_gold="")
    assert graduate("run", str(project)).returncode == 0
    with sqlite3.connect(project / ".graduate" / "graduate.db") as db:
        ids = [r[0] for r in db.execute("SELECT id FROM examples WHERE external_id IN ('i3', 'i7', 'i11', 'i19')")]
    (project / "review.csv").write_text("example_id,corrected_label,reviewer\n" + "".join(f"{i},(none),ana\n" for i in ids), encoding="utf-8")
    assert graduate("data", "review", "import", str(project), str(project / "review.csv")).returncode == 0
    assert graduate("run", str(project)).returncode == 0  # now some training sets are empty: the students may answer none
    proj = Project.load(project)
    assert create_app(proj, options(proj, auth=False)).state.unwritable_none is True
    spelled = make_project(tmp_path / "spelled", ["alpha", "beta", "gamma"], LABEL_WORDS)
    assert graduate("run", str(spelled)).returncode == 0
    proj = Project.load(spelled)
    assert create_app(proj, options(proj, auth=False)).state.unwritable_none is False  # "none" writes the empty set


def _import_old(project: Path, rows: str) -> tuple[Any, dict, Any]:
    """``old.csv`` (``rows``) as the project's label_imports, column ``old``: the project, its spec
    as written and the import's report."""
    from graduate.pipeline.ingest import load_data, load_label_imports
    from graduate.pipeline.project import Project

    (project / "old.csv").write_text(rows, encoding="utf-8")
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    spec["label_imports"] = [{"path": "old.csv", "source": "items", "columns": ["old"], "separator": ";"}]
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec))
    proj = Project.load(project)
    load_data(proj)
    (rep,) = load_label_imports(proj)
    return proj, spec, rep


def _old_labels(proj: Any) -> dict[str, str]:
    """The labels stored from old.csv, by item id."""
    from sqlalchemy import select

    from graduate.store.schema import examples, labels

    with proj.engine.connect() as conn:
        return dict(conn.execute(select(examples.c.external_id, labels.c.label).join(labels, labels.c.example_id == examples.c.id).where(labels.c.labeller == "import:old")).all())


def test_an_earlier_labellers_empty_set_is_spelled_as_in_gold(tmp_path: Path) -> None:
    """label_imports read `(none)` (gold's and the review queue's spelling of the empty set) as no
    label of the task and skipped the row, while a cell of separators only was the empty set."""
    from sqlalchemy import select

    from graduate.pipeline.ingest import load_label_imports
    from graduate.pipeline.project import Project
    from graduate.store.schema import examples, labels

    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    proj, spec, rep = _import_old(project, "id,old,older\ni0,alpha;beta,(none)\ni1,(none),nothing\ni2,(none);alpha,gamma\ni3,delta,\n")
    old = project / "old.csv"
    assert rep.skipped == [
        f"{old}:4: column 'old': '(none)' stands for the empty set, so it cannot go with labels ('(none);alpha'); give either the labels or (none) alone",
        f"{old}:5: column 'old': 'delta' is not a task label ['alpha', 'beta', 'gamma']",
    ]
    assert _old_labels(proj) == {"i0": "alpha;beta", "i1": "(none)"}

    # a value `values` maps to (none) is the empty set too
    spec["label_imports"] = [{"path": "old.csv", "source": "items", "columns": ["older"], "separator": ";", "values": {"nothing": "(none)", "gamma": "gamma", "(none)": "(none)"}}]
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec))
    proj = Project.load(project)
    (rep,) = load_label_imports(proj)
    assert rep.skipped == [] and rep.added == 3
    with proj.engine.connect() as conn:
        got = dict(conn.execute(select(examples.c.external_id, labels.c.label).join(labels, labels.c.example_id == examples.c.id).where(labels.c.labeller == "import:older")).all())
    assert got == {"i0": "(none)", "i1": "(none)", "i2": "gamma"}



def test_a_values_key_written_in_decomposed_unicode_still_maps_the_cell_it_always_did(tmp_path: Path) -> None:
    """label_imports' `values` looked a cell's piece up as written; the shared cell reader (NFC)
    looked it up composed, so a key and cell both in the decomposed form (as a Mac may save them),
    read before, were refused, and the next import removed the labels they had stored. Either form
    of a key now reads either form of a cell."""
    import unicodedata

    from graduate.pipeline.ingest import load_label_imports
    from graduate.pipeline.project import Project

    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    nfd = unicodedata.normalize("NFD", "négatif")
    proj, spec, _ = _import_old(project, "id,old\ni0,alpha\n")
    spec["label_imports"][0]["values"] = {"oui": "alpha", nfd: "(none)", unicodedata.normalize("NFC", "bêta"): "beta"}
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    (project / "old.csv").write_text(f"id,old\ni1,{nfd}\ni2,oui\ni3,{unicodedata.normalize('NFD', 'bêta')};oui\n", encoding="utf-8")
    (rep,) = load_label_imports(Project.load(project))
    assert rep.skipped == [] and _old_labels(proj) == {"i1": "(none)", "i2": "alpha", "i3": "alpha;beta"}


def test_the_limitations_say_in_words_how_a_multi_label_student_falls_short(tmp_path: Path) -> None:
    """They were empty for label sets (no accuracy to quote): `graduate errors` printed a bare
    "Limitations" heading and the report an empty list."""
    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    spec["students"] = [{"kind": "majority"}]  # answers every label for every item: behind the teacher
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec))
    assert graduate("run", str(project)).returncode == 0
    r = graduate("errors", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads((project / ".graduate" / "summary.json").read_text())
    micro = summary["test_sets"]["test"]["students"]["majority"]["micro_f1"]
    limits = " ".join(r.stdout.split("Limitations", 1)[1].split("review queue")[0].split())
    assert f"On test (16 items) majority reaches micro-F1 {micro:.3f}" in limits, limits
    assert "the teacher (m) 1.000 on the 16 it answered" in limits, limits
    # every label is added to the test items without it: gamma (in 4 gold sets of 16) to the most
    assert "It trails the teacher most on label 'gamma': it misses it on 0 items and wrongly adds it to 12 (the teacher: 0 and 0) of the 16 both answered." in limits, limits
    html = (project / ".graduate" / "report.html").read_text(encoding="utf-8")
    assert "reaches micro-F1" in html.split('id="limitations"', 1)[1].split("</ul>", 1)[0]


def test_a_spec_label_no_gold_set_holds_is_named_and_its_gate_not_judged(tmp_path: Path) -> None:
    """A label in the spec that never occurs: its F1 was a silent 0 (a perfect teacher's macro-F1 0.75)
    and a gate on it judged that 0."""
    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    spec["task"]["labels"].append("delta")
    spec["gates"] = ["student.f1[delta] >= 0.9 * teacher.f1[delta] on test", "student.micro_f1 >= 0.9"]
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec))
    r = graduate("run", str(project))
    flat = " ".join(r.stdout.split())
    note = "test: no gold set holds 'delta': recall and F1 of that label are 0/0, counted as 0 in the macro figures above; a gate on them is judged not measured"
    assert note in flat, flat
    assert "not measured on test: student.f1[delta], teacher.f1[delta]" in flat, flat
    r = graduate("evaluate", str(project))
    assert r.returncode == 1 and note in " ".join(r.stdout.split()), r.stdout + r.stderr


def test_the_teachers_unparseable_answers_are_counted_and_named(tmp_path: Path) -> None:
    """`graduate run` said only "dropped 3: teacher answer did not parse" (and of a test set "1
    unparseable"); now which items and what was wrong with each (an unknown label word, escaped as
    written; an empty answer)."""
    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    said = {"pool/i1/run0": "betta", "pool/i2/run0": "", "pool/i3/run0": "alpha, [bold]x", "test/i0/run0": "[red]alfa"}
    lines = [json.loads(line) for line in (project / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    for rec in lines:
        if rec["custom_id"] in said:
            rec["response"]["body"]["choices"][0]["message"]["content"] = said[rec["custom_id"]]
    (project / "out.jsonl").write_text("".join(json.dumps(rec) + "\n" for rec in lines), encoding="utf-8")
    r = graduate("run", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    flat = " ".join(r.stdout.split())
    assert "dropped 3: teacher answer did not parse" in flat, flat
    assert "e.g. items id i1: unknown label word 'betta'; items id i2: empty answer; items id i3: unknown label word '[bold]x'" in flat, flat
    caption = "teacher scored on 15 answered items (1 unparseable, 0 without an answer); e.g. items id i0: unknown label word '[red]alfa'"
    assert caption in flat, flat
    r = graduate("evaluate", str(project))
    assert r.returncode == 0 and caption in " ".join(r.stdout.split()), r.stdout + r.stderr
    summary = json.loads((project / ".graduate" / "summary.json").read_text())
    parse = next(s for s in summary["dataset"]["recipe"]["steps"] if s["step"] == "parse")
    assert parse["why"] == ["items id i1: unknown label word 'betta'", "items id i2: empty answer", "items id i3: unknown label word '[bold]x'"]
    r = graduate("data", "build", str(project))  # the recipe table says the same
    assert r.returncode == 0 and "e.g. items id i1: unknown label word 'betta'; items id i2: empty answer" in " ".join(r.stdout.replace("│", " ").split()), r.stdout
    r = graduate("status", str(project))  # the 4 answers that did not parse are not counted as labels
    rows = {" ".join(line.strip("│ ").split("│")[0].split()): line.strip("│ ").split("│")[-1].strip() for line in r.stdout.splitlines() if "│" in line}
    assert rows.get("answers teacher that did not parse (no label)") == "4", r.stdout
    assert int(rows["labels teacher"]) == int(rows["teacher calls imported:ok"]) - 4, rows


def test_a_spec_label_no_training_item_carries_is_named_and_so_is_a_prior_it_cannot_reach(tmp_path: Path) -> None:
    """The training line showed `'delta': 0` among the counts, and `clean.balance.prior` left a share it
    could not give (no item to weigh up) at 0 in the recipe alone."""
    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    spec["task"]["labels"].append("delta")
    spec["clean"] = {"balance": {"strategy": "prior", "prior": {"delta": 0.2, "alpha": 0.5}}}
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec))
    r = graduate("run", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    flat = " ".join(r.stdout.split())
    assert "no training item carries 'delta': no student can learn to answer it" in flat, flat
    assert "clean.balance.prior not reached: 'delta' carried by 0.00 of the weight, not 0.2 (0 of 64 training items carry it)" in flat, flat
    assert "'alpha' carried by" not in flat  # raked to its share
    summary = json.loads((project / ".graduate" / "summary.json").read_text())
    balance = next(s for s in summary["dataset"]["recipe"]["steps"] if s["step"] == "balance")
    assert balance["prior_not_reached"] == {"delta": 0.0} and abs(balance["weighted_shares"]["alpha"] - 0.5) < 0.01


def test_who_was_right_counts_every_test_item(tmp_path: Path) -> None:
    """An item the student got right but the teacher did not answer usably fell out of the table:
    16 items, 14 both right, 0 in every other column."""
    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    lines = [json.loads(line) for line in (project / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    for rec in lines:
        if rec["custom_id"] in ("test/i0/run0", "test/i5/run0"):
            rec["response"]["body"]["choices"][0]["message"]["content"] = "alfa"  # no label word
    (project / "out.jsonl").write_text("".join(json.dumps(rec) + "\n" for rec in lines), encoding="utf-8")
    assert graduate("run", str(project)).returncode == 0
    r = graduate("errors", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("│ test "))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells == ["test", "16", "14", "2", "0", "0", "0", "0"], cells
    html = (project / ".graduate" / "report.html").read_text(encoding="utf-8")
    assert "<th>student right, no teacher answer</th>" in html and "<td>test</td><td>16</td><td>14</td><td>2</td>" in html


def test_a_student_answers_no_more_labels_than_parse_max_labels_allows(tmp_path: Path) -> None:
    """With `parse.max_labels: 1` the teacher's two-label answers are refused, yet the student
    answered `alpha;gamma` for a text with both labels' words: served, that answer ("alpha, gamma")
    is one the task's own parser refuses. Now it keeps the label furthest past its threshold."""
    from graduate.formats import answer_format
    from graduate.pipeline.project import Project
    from graduate.serve.app import create_app
    from servers.graduate_server import ThreadServer, options

    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], {**LABEL_WORDS, "max_labels": 1})
    r = graduate("run", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dropped 7: teacher answer did not parse" in " ".join(r.stdout.split())  # its two-label answers
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,w0a w0b w2a w2b\n2,w1a w1b w2a w2b\n3,w1a w1b\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    r = graduate("predict", str(project), "--input", str(src), "--output", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert rows[2]["labels"] == "beta"
    for row in rows:  # one label, the most probable (thresholds tuned near 0.5 on this clean data)
        probs = {lab: float(row[f"p_{lab}"]) for lab in ("alpha", "beta", "gamma")}
        assert row["labels"] == max(probs, key=lambda lab: probs[lab]), rows
    assert sum(float(rows[0][f"p_{lab}"]) >= 0.5 for lab in ("alpha", "gamma")) == 2  # it would have answered both
    import httpx

    proj = Project.load(project)
    with ThreadServer(create_app(proj, options(proj, auth=False))) as server:
        got = httpx.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "Tags: w0a w0b w2a w2b"}]}, timeout=60)
    assert got.status_code == 200, got.text
    content = got.json()["choices"][0]["message"]["content"]
    parsed = answer_format(proj.spec.task.parse, proj.spec.task.labels).parse(content)
    assert parsed.error is None and parsed.label in ("alpha", "gamma"), content


def test_predict_help_names_the_multi_label_column() -> None:
    """`graduate predict --help` promised a `label` column; a multi-label task's is `labels`."""
    r = graduate("predict", "--help")
    flat = " ".join(r.stdout.replace("│", " ").split())
    assert r.returncode == 0 and "plus `label` (multi-label: `labels`, the set `;`-joined, empty for none)" in flat, flat


def test_an_earlier_labellers_set_past_parse_max_labels_is_named_and_not_stored(tmp_path: Path) -> None:
    """With `parse.max_labels: 1` the teacher's two-label answers are refused, but a label_imports
    cell of two labels was stored and its labeller scored on sets the task rules out."""
    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], {**LABEL_WORDS, "max_labels": 1})
    old = project / "old.csv"
    proj, _, rep = _import_old(project, "id,old\ni0,alpha\ni1,alpha;beta\ni2,(none)\ni3,beta;gamma;alpha\n")
    assert rep.skipped == [
        f"{old}:3: column 'old': 'alpha;beta' has 2 labels, more than parse.max_labels 1 allows; keep at most 1 or raise parse.max_labels",
        f"{old}:5: column 'old': 'alpha;beta;gamma' has 3 labels, more than parse.max_labels 1 allows; keep at most 1 or raise parse.max_labels",
    ]
    assert rep.added == 2
    assert _old_labels(proj) == {"i0": "alpha", "i2": "(none)"}


def test_a_reviewers_set_naming_a_label_the_spec_dropped_is_named_and_not_trained_on(tmp_path: Path) -> None:
    """After a label was renamed in task.labels, a reviewer's stored set naming the old label made
    every build an 'internal error' (labelset.decode's ValueError); it is left out of the training
    set, named in the recipe, and kept in the store (renamed back, it applies again)."""
    from graduate.data.review import import_review
    from graduate.pipeline.ingest import load_data
    from graduate.pipeline.project import Project
    from graduate.store.schema import examples as examples_table
    from sqlalchemy import select

    root = make_project(tmp_path / "p", ["care", "equality", "loyalty"], LABEL_WORDS)
    proj = Project.load(root)
    load_data(proj)
    with proj.engine.connect() as conn:
        ids = conn.execute(select(examples_table.c.id, examples_table.c.external_id).order_by(examples_table.c.id)).all()
    first = next(i for i, ext in ids if ext == "i1")  # a pool item
    (root / "r.csv").write_text(f"example_id,corrected_label,reviewer\n{first},care;equality,ana\n", encoding="utf-8")
    assert import_review(proj.engine, root / "r.csv", ["care", "equality", "loyalty"], multi_label=True).added == 1
    raw = yaml.safe_load((root / "graduate.yaml").read_text())
    raw["task"]["labels"] = ["care", "fairness", "loyalty"]
    (root / "graduate.yaml").write_text(yaml.safe_dump(raw))
    (root / "items.csv").write_text((root / "items.csv").read_text().replace("equality", "fairness"))
    proj = Project.load(root)
    proj.import_logs()
    load_data(proj)
    ds = proj.build_training_set()
    step = next(s for s in ds.recipe["steps"] if s["step"] == "human_labels")
    assert step["changed"] == step["added"] == 0 and step["not_task_labels"] == [[first, "care;equality", "human:ana"]]
    assert step["why"] == [f"item {first}: human:ana's 'care;equality' names labels ['equality'] not in task.labels; kept in the store, not trained on"]
    assert all(ex.id != first or lab != "care;equality" for ex, lab in zip(ds.examples, ds.labels))


def test_the_reports_side_by_side_table_shows_each_predictors_label_set_figures(tmp_path: Path) -> None:
    """The report's "Students side by side" table showed accuracy, F1 and ROC-AUC per test set, which
    label sets do not have: every cell of every row a dash. It shows micro-F1 (with its interval),
    exact set match and macro-F1 instead, as the results table does."""
    import re
    from html import unescape

    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    r = graduate("run", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    test = json.loads((project / ".graduate" / "summary.json").read_text())["test_sets"]["test"]
    html = (project / ".graduate" / "report.html").read_text(encoding="utf-8")
    table = html.split('id="ladder-table"', 1)[1].split("</table>", 1)[0]
    rows = [[" ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)] for row in re.findall(r"<tr.*?</tr>", table, flags=re.S)]
    assert rows[0][2:5] == ["micro-F1 test", "exact set match test", "macro-F1 test"], rows[0]
    by_name = {row[0].rstrip(" ★"): row for row in rows[1:]}
    for name, figs in [("teacher (m)", test["teacher"]), ("majority", test["students"]["majority"]), ("tfidf-logreg", test["students"]["tfidf-logreg"])]:
        lo, hi = figs["ci"]["micro_f1"]
        assert by_name[name][2:5] == [f"{figs['micro_f1']:.3f} [{lo:.3f}, {hi:.3f}]", f"{figs['exact_match']:.3f} [{figs['ci']['exact_match'][0]:.3f}, {figs['ci']['exact_match'][1]:.3f}]", f"{figs['macro_f1']:.3f}"], (name, by_name[name])


def test_a_micro_figure_over_no_label_at_all_is_not_measured_by_a_gate(tmp_path: Path) -> None:
    """A test set whose gold sets are all empty (items no tag applies to), answered right by student
    and teacher alike (exact set match 1.0): micro precision, recall and F1 are 0/0 there, and the
    figures hold 0. A gate judged that 0: `student.micro_f1 >= 0.5` failed a perfect student as if it
    had scored 0, and `student.micro_f1 >= 0.8 * teacher.micro_f1` passed on 0 >= 0. Both are now
    not measured, as a gate on one label's 0/0 is; a set with labels is judged as before."""
    import csv as csv_module

    project = make_project(tmp_path / "p", ["alpha", "beta", "gamma"], LABEL_WORDS)
    with (project / "items.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv_module.reader(f))
    for row in rows[1:]:
        if row[2] == "(none)" and row[3] == "test":
            row[3] = "empties"  # the test items without a label: a set of their own
    with (project / "items.csv").open("w", newline="", encoding="utf-8") as f:
        csv_module.writer(f).writerows(rows)
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    spec["students"] = [{"kind": "tfidf-logreg"}]
    spec["test_sets"].append({"name": "empties", "source": "items", "tags": ["empties"]})
    spec["gates"] = ["student.micro_f1 >= 0.5", "student.micro_f1 >= 0.8 * teacher.micro_f1 on empties", "student.micro_recall >= 0.5 on empties", "student.exact_match >= 0.9"]
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec))
    r = graduate("run", str(project))
    summary = json.loads((project / ".graduate" / "summary.json").read_text())
    empties = summary["test_sets"]["empties"]
    assert empties["n"] == 4 and empties["students"]["tfidf-logreg"]["exact_match"] == 1.0 == empties["teacher"]["exact_match"], r.stdout
    gates = {(g["gate"], g["test_set"]): g for g in summary["gates"]}
    assert gates[("student.micro_f1 >= 0.5", "test")]["passed"] and gates[("student.exact_match >= 0.9", "empties")]["passed"]
    for gate, missing in [
        ("student.micro_f1 >= 0.5", "student.micro_f1"),
        ("student.micro_f1 >= 0.8 * teacher.micro_f1 on empties", "student.micro_f1, teacher.micro_f1"),
        ("student.micro_recall >= 0.5 on empties", "student.micro_recall"),
    ]:
        g = gates[(gate, "empties")]
        assert not g["passed"] and g["left"] is None and g["detail"] == f"not measured on empties: {missing}", g
