"""`graduate teacher audit` and `graduate data ...` as a user runs them, in a subprocess, on the tiny project."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from quality_project import edit_spec, with_audit


def graduate(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=300, env=env)


def test_audit_then_review_round_trip_from_the_command_line(tiny_project):
    project = with_audit(tiny_project)
    edit_spec(project, clean={"label_issues": {"action": "report", "folds": 3, "params": {"max_iter": 300}}})
    r = graduate("teacher", "audit", str(project))
    assert r.returncode == 0, r.stderr
    flat = " ".join(r.stdout.split())
    assert "recommended for graduate label: gpt-4 cot" in flat and "its agreement with gold" in flat and "not a ceiling" in flat
    assert "high false-positive rate on test.balanced" in r.stdout and "set teacher: to the recommended" in r.stdout
    audit = json.loads((project / ".graduate" / "audit.json").read_text())
    assert audit["recommended"]["name"] == "gpt-4 cot"

    r = graduate("data", "build", str(project))
    assert r.returncode == 0, r.stderr
    assert "label_issues" in r.stdout and "exact_duplicates" in r.stdout

    queue = project / "queue.csv"
    r = graduate("data", "review", "export", str(project), "--out", str(queue), "--limit", "10")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(queue.open(newline="", encoding="utf-8")))
    assert 0 < len(rows) <= 10
    rows[0]["corrected_label"] = "bad" if rows[0]["teacher_label"] == "ok" else "ok"
    rows[1]["corrected_label"] = "unsure"
    with queue.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    r = graduate("data", "review", "import", str(project), str(queue), "--reviewer", "ann")
    assert r.returncode == 1  # a row was skipped: said, counted, and the exit code shows it
    assert "'unsure' is not a task label" in r.stderr
    assert "new human labels" in r.stdout and "next: `graduate run" in r.stdout
    r = graduate("data", "review", "import", str(project), str(queue), "--reviewer", "ann")
    assert r.returncode == 1 and "next:" not in r.stdout  # nothing new: no advice to retrain on it

    r = graduate("data", "recipe", str(project), "--step", "exact_duplicates")
    assert r.returncode == 0, r.stderr
    r = graduate("data", "balance", str(project))
    assert r.returncode == 0 and "balanced class weight" in r.stdout
    assert "balancing is reported, not forced" in r.stdout  # no strategy set: how to set one


def test_the_stored_recipe_names_what_the_latest_build_dropped_when_it_kept_the_same_items(tiny_project):
    """Rows without a teacher answer change the recipe, not the items kept: `data recipe` still shows
    this build's drops (stored as a build of the same version), and `data issues` does not hide it."""
    assert graduate("data", "build", str(tiny_project)).returncode == 0
    first = graduate("data", "recipe", str(tiny_project), "--step", "teacher_answer", "--show", "100")
    assert first.returncode == 0, first.stderr
    with (tiny_project / "comments.csv").open("a", newline="") as f:
        f.write("\n".join(f"new{i},a comment nobody asked the teacher about number {i},0,train" for i in range(3)) + "\n")
    built = graduate("data", "build", str(tiny_project))
    assert built.returncode == 0, built.stderr
    recipe = graduate("data", "recipe", str(tiny_project), "--step", "teacher_answer", "--show", "100")
    assert recipe.returncode == 0, recipe.stderr
    assert recipe.stdout.count("a comment nobody asked the teacher") == 3 and "a comment nobody asked" not in first.stdout
    issues = graduate("data", "issues", str(tiny_project))
    assert issues.returncode == 0, issues.stderr
    again = graduate("data", "recipe", str(tiny_project), "--step", "teacher_answer", "--show", "100")
    assert again.stdout == recipe.stdout  # the training set's recipe, not `data issues`' own version


def test_a_line_number_in_an_error_is_printed_as_it_is_not_as_an_emoji(tiny_project):
    """Rich reads ":100:" as an emoji code, so "comments.csv:100: ..." lost its line number."""
    path = tiny_project / "comments.csv"
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    for r in rows:
        r["comment_text"] = " ".join(r["comment_text"].split())  # one line per row: row k is line k + 1
    rows[98]["is_bad"] = "7"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    r = graduate("check", str(tiny_project))  # the row is skipped, said with its line
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "1 rows will be skipped" in out, out
    assert "comments.csv:100: gold value '7'" in out and "\N{HUNDRED POINTS SYMBOL}" not in out, out


def test_an_output_path_that_cannot_be_a_file_is_refused_in_one_line_before_the_work(tiny_project):
    """`data review export --out FOLDER` and `data diversity --export` under a file or a missing folder
    ended in "internal error: IsADirectoryError / FileNotFoundError" after the whole build."""
    edit_spec(tiny_project, clean={"diversity": {"embedding": "tfidf", "clusters": 3}})
    data = tiny_project / "comments.csv"
    rows = list(csv.DictReader(data.open(newline="", encoding="utf-8")))
    words = "alpha beta gamma delta river mountain coffee music football garden".split()
    rows += [{"id": f"pool{i}", "comment_text": " ".join(words[(i + k) % 10] for k in range(6)), "is_bad": "", "subsets": "pool"} for i in range(30)]
    with data.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for args, said in (
        (["data", "review", "export", str(tiny_project), "--out", str(tiny_project)], "is a folder; give a file name for the output"),
        (["data", "diversity", str(tiny_project), "--export", str(data / "x.csv")], "comments.csv is a file, not a folder"),
    ):
        r = graduate(*args)
        assert r.returncode == 2 and said in r.stderr and "internal error" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tiny_project / ".graduate" / "graduate.db").exists()  # refused before any work
    out = tiny_project / "new" / "folder" / "uncovered.csv"
    r = graduate("data", "diversity", str(tiny_project), "--export", str(out))
    assert r.returncode == 0, r.stderr
    assert out.is_file() and len(list(csv.DictReader(out.open(newline="", encoding="utf-8")))) > 0


def test_a_folder_given_as_an_input_file_is_refused_in_one_line(tiny_project):
    """`data review import PROJECT FOLDER`, `label --input FOLDER` and `import pairs|batch` with a
    folder ended in "internal error: IsADirectoryError"."""
    log = str(tiny_project / "gpt-3.5-turbo.simple.batch_input.jsonl")
    for args, said in (
        (["data", "review", "import", str(tiny_project), str(tiny_project)], "is a folder; name the CSV file in it"),
        (["label", str(tiny_project), "--input", str(tiny_project)], "is a folder; name the CSV file in it"),
        (["import", "pairs", str(tiny_project), str(tiny_project)], "is a folder; name the JSONL file in it"),
        (["import", "batch", str(tiny_project), log, str(tiny_project)], "is a folder; name the JSONL file in it"),
    ):
        r = graduate(*args)
        assert r.returncode == 2 and f"{tiny_project}: {said}" in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_balance_of_an_empty_training_set_is_a_table_of_zeros(tiny_project):
    """Every training row deleted from the file (or tags that match none): `data balance` ended in
    "internal error: ValueError: Sample weights must contain at least one non-zero number"."""
    edit_spec(tiny_project, train={"source": "jigsaw", "tags": ["no-such-subset*"]}, clean={"balance": {"strategy": "class_weight"}})
    r = graduate("data", "balance", str(tiny_project))
    assert r.returncode == 0, r.stderr
    assert "internal error" not in r.stderr and "clean.balance.strategy class_weight" in r.stdout
    r = graduate("run", str(tiny_project))
    assert r.returncode == 2 and "no training data" in r.stderr and "internal error" not in r.stderr, r.stderr


def test_a_reviewer_name_that_would_rewrite_the_terminal_is_refused_and_one_stored_before_prints_escaped(tiny_project):
    """A reviewer's name is stored as labeller human:NAME and printed by `data recipe`; Rich passes
    ESC through, so "\\x1b]0;owned\\x07" retitled (and "\\x1b[2J" cleared) the maintainer's terminal.
    --reviewer refuses such a name in one line; a name stored before the check prints escaped."""
    from sqlalchemy import select

    from graduate import Project
    from graduate.store.db import now
    from graduate.store.schema import examples, labels

    proj = Project.load(tiny_project)
    proj.import_logs()
    proj.load_data()
    ds = proj.build_training_set()
    ex, teacher = ds.examples[0], ds.labels[0]
    queue = tiny_project / "reviewed.csv"
    queue.write_text(f"example_id,corrected_label,reviewer\n{ex.id},{teacher},\n", encoding="utf-8")
    r = graduate("data", "review", "import", str(tiny_project), str(queue), "--reviewer", "ev\x1b]0;owned\x07il")
    assert r.returncode == 2 and "--reviewer" in r.stderr and "U+001B" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "\x1b" not in r.stdout + r.stderr
    with proj.engine.begin() as conn:  # as a store written before names were checked holds it
        assert conn.execute(select(examples.c.id).where(examples.c.id == ex.id)).scalar() == ex.id
        conn.execute(labels.insert().values(example_id=ex.id, kind="human", labeller="human:ev\x1b]0;owned\x07il\x1b[2J\u202e", label="bad" if teacher == "ok" else "ok", created_at=now()))
    assert graduate("data", "build", str(tiny_project)).returncode == 0
    r = graduate("data", "recipe", str(tiny_project), "--step", "human_labels")
    assert r.returncode == 0, r.stderr
    flat = "".join(r.stdout.split())
    assert "\x1b" not in r.stdout and "\u202e" not in r.stdout and "\x07" not in r.stdout
    assert "human:ev\\x1b]0;owned\\x07il\\x1b[2J\\u202e" in flat, r.stdout
