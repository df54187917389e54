"""The real `graduate` command in a subprocess, on the tiny real project."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest


def graduate(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "graduate", *args], capture_output=True, text=True, cwd=cwd, timeout=300, env={**_env(), **(env or {})}
    )


def _env() -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k != "GRADUATE_STORE_URL"}
    env["COLUMNS"] = "200"
    return env


def teacher_accuracy_from_raw_files(project: Path) -> float:
    """Independently of graduate: GPT-4's accuracy on the fixture's test.balanced items."""
    gold = {r["id"]: r["is_bad"] for r in csv.DictReader((project / "comments.csv").open(newline="")) if "test.balanced" in r["subsets"]}
    answers = {}
    inp = [json.loads(line) for line in (project / "gpt-4-1106-preview.simple.batch_input.jsonl").open()]
    out = {json.loads(line)["custom_id"]: json.loads(line) for line in (project / "gpt-4-1106-preview.simple.batch_output.jsonl").open()}
    for req in inp:
        cid = req["custom_id"]
        item = cid.split("/")[1]
        if item in gold and item not in answers:
            content = out[cid]["response"]["body"]["choices"][0]["message"]["content"]
            answers[item] = "1" if '"is_bad": 1' in content or '"is_bad":1' in content else "0"
    return sum(answers[i] == gold[i] for i in answers) / len(answers)


def test_run_then_rerun_then_predict(tiny_project, tmp_path):
    first = graduate("run", str(tiny_project))
    assert first.returncode == 0, first.stderr
    assert "test.balanced" in first.stdout and "tfidf-logreg" in first.stdout
    summary = json.loads((tiny_project / ".graduate" / "summary.json").read_text())
    tb = summary["test_sets"]["test.balanced"]
    assert tb["teacher"]["accuracy"] == pytest.approx(teacher_accuracy_from_raw_files(tiny_project))
    assert summary["teacher"]["cost_estimated"] is True and summary["teacher"]["cost_per_1k_usd"] > 0
    student = tb["students"]["tfidf-logreg"]
    for key in ["accuracy", "precision", "recall", "f1", "roc_auc", "fpr", "tpr", "agreement_with_teacher", "cost_per_1k_usd"]:
        assert student[key] is not None, key
    assert summary["imports"][1]["failed_calls"] == 5
    assert summary["dataset"]["size"] > 100

    second = graduate("run", str(tiny_project))
    assert second.returncode == 0, second.stderr
    again = json.loads((tiny_project / ".graduate" / "summary.json").read_text())
    assert all(i["already_imported"] for i in again["imports"])
    assert all(s["reused"] for s in again["students"].values())
    assert again["test_sets"]["test.balanced"]["students"]["tfidf-logreg"]["accuracy"] == student["accuracy"]

    src = tmp_path / "in.csv"
    src.write_text('ref,comment_text\n1,"You are a wonderful person, thanks for the edit."\n2,"go to hell you stupid idiot"\n3,\n')
    out = tmp_path / "out.csv"
    res = graduate("predict", str(tiny_project), "--input", str(src), "--text-column", "comment_text", "--output", str(out))
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(out.open(newline="")))
    assert list(rows[0]) == ["ref", "comment_text", "label", "p_ok", "p_bad"]
    assert rows[0]["ref"] == "1" and rows[0]["label"] in ("ok", "bad")
    assert abs(float(rows[1]["p_ok"]) + float(rows[1]["p_bad"]) - 1) < 1e-6
    assert float(rows[1]["p_bad"]) > float(rows[0]["p_bad"])
    assert rows[2]["label"] == ""  # empty text: left blank, reported
    assert "in.csv:4: empty text" in res.stderr  # file:line, as everywhere else

    bad = graduate("predict", str(tiny_project), "--input", str(src), "--text-column", "body", "--output", str(out))
    assert bad.returncode == 2
    assert "in.csv" in bad.stderr and "'body'" in bad.stderr and "Traceback" not in bad.stderr


def test_predict_before_run_says_what_to_do(tiny_project, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("comment_text\nhello\n")
    res = graduate("predict", str(tiny_project), "--input", str(src), "--output", str(tmp_path / "o.csv"))
    assert res.returncode == 2
    assert "graduate run" in res.stderr and "Traceback" not in res.stderr
    res = graduate("predict", str(tiny_project), "--input", str(src), "--output", str(tmp_path / "o.parquet"))
    assert res.returncode == 2 and "--output: o.parquet: without --ray, predict reads and writes CSV" in res.stderr
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [("predict", "--actors", "4"), ("predict", "--cpus-per-actor", "0.5"), ("label", "--workers", "4"), ("label", "--lease-s", "5")],
)
def test_a_ray_option_without_ray_is_refused_not_ignored(tiny_project, tmp_path, command, flag, value):
    src = tmp_path / "in.csv"
    src.write_text("comment_text\nhello\n")
    extra = ["--output", str(tmp_path / "o.csv")] if command == "predict" else []
    res = graduate(command, str(tiny_project), "--input", str(src), *extra, flag, value)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: option: {flag}: only with --ray") and lines[0].endswith("add --ray local, or leave it out")
    assert not (tmp_path / "o.csv").exists()


def test_import_batch_twice_adds_nothing(tiny_project):
    args = ("import", "batch", str(tiny_project), str(tiny_project / "gpt-3.5-turbo.simple.batch_input.jsonl"), str(tiny_project / "gpt-3.5-turbo.simple.batch_output.jsonl"))
    first = graduate(*args)
    assert first.returncode == 0, first.stderr
    assert "added 205" in first.stdout and "failed calls kept as errors 5" in first.stdout
    second = graduate(*args)
    assert "already imported" in second.stdout


def test_a_store_another_process_holds_is_one_line_naming_it_and_loses_nothing(tiny_project):
    # Held past the busy wait, the store's lock surfaced as sqlalchemy's "database is locked",
    # reported as an internal error to report. It is no bug: one line naming the store and the fix.
    import sqlite3

    def batch(model: str) -> tuple[str, str]:
        return str(tiny_project / f"{model}.simple.batch_input.jsonl"), str(tiny_project / f"{model}.simple.batch_output.jsonl")

    assert graduate("import", "batch", str(tiny_project), *batch("gpt-3.5-turbo")).returncode == 0
    db = (tiny_project / ".graduate" / "graduate.db").resolve()
    with sqlite3.connect(db) as conn:
        before = list(conn.iterdump())
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # as another command's write transaction holds it
        locked = graduate("import", "batch", str(tiny_project), *batch("gpt-4-1106-preview"), env={"GRADUATE_STORE_BUSY_S": "0.5"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.returncode == 2, locked.stderr
    assert locked.stderr.strip().splitlines() == [
        f"error: could not lock the store {db} in time: another graduate command, a server or a database client holds it (or a deadlock); wait for it to finish or stop it, then run this again"
    ], locked.stderr
    with sqlite3.connect(db) as conn:
        assert list(conn.iterdump()) == before  # the failed transaction rolled back; nothing stored was lost
    again = graduate("import", "batch", str(tiny_project), *batch("gpt-4-1106-preview"))
    assert again.returncode == 0 and "added" in again.stdout, again.stderr


def test_bad_spec_is_one_line_naming_file_and_field(tiny_project):
    spec = tiny_project / "graduate.yaml"
    spec.write_text(spec.read_text().replace("temperature: 0", "temprature: 0"))
    res = graduate("run", str(tiny_project))
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "graduate.yaml: teacher.temprature: unknown field" in lines[0]


def test_init_scaffolds_a_valid_project(tmp_path):
    target = tmp_path / "proj"
    res = graduate("init", str(target), "--labels", "spam,ham")
    assert res.returncode == 0, res.stderr
    assert graduate("check", str(target)).returncode == 0
    again = graduate("init", str(target))
    assert again.returncode == 2 and "--force" in again.stderr
    run = graduate("run", str(target))
    # the scaffold's items have no teacher answers yet: a clear error, not a crash
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_init_on_a_file_or_an_unwritable_place_is_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = graduate("init", str(afile))
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert str(afile) in res.stderr and "is a file, not a folder" in res.stderr
    res = graduate("init", str(afile / "sub"))
    assert res.returncode == 2 and "cannot create the project folder" in res.stderr and "Traceback" not in res.stderr
    assert afile.read_text() == "x"


def test_spec_help_lists_fields():
    res = graduate("spec-help")
    assert res.returncode == 0
    assert "teacher.budget_usd" in res.stdout and "task.parse.key" in res.stdout


def test_import_with_bad_lines_exits_non_zero_and_says_so_last(tiny_project, tmp_path):
    # Issue 12, defect 9: skipped lines exited 0.
    src_in = tiny_project / "gpt-3.5-turbo.simple.batch_input.jsonl"
    src_out = tiny_project / "gpt-3.5-turbo.simple.batch_output.jsonl"
    out = tmp_path / "out.jsonl"
    out.write_text(src_out.read_text() + "{not json\n")
    res = graduate("import", "batch", str(tiny_project), str(src_in), str(out))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "added 205" in res.stdout
    last = [line for line in res.stderr.splitlines() if line.strip()][-1]
    assert "1 lines skipped" in last and "import the files again" in last
    # the same file again: read again, nothing added twice, its bad line named again (it said
    # "already imported, nothing to do" and exited 0)
    again = graduate("import", "batch", str(tiny_project), str(src_in), str(out))
    assert again.returncode == 1, again.stdout + again.stderr
    assert "added 0, already stored 205" in again.stdout and "already imported" not in again.stdout
    # fixed, it is recorded as imported: a third import reads nothing
    out.write_text(src_out.read_text())
    assert graduate("import", "batch", str(tiny_project), str(src_in), str(out)).returncode == 0
    third = graduate("import", "batch", str(tiny_project), str(src_in), str(out))
    assert third.returncode == 0 and "already imported, nothing to do" in third.stdout, third.stdout


def test_a_spec_with_several_errors_shows_every_one(tiny_project):
    spec = tiny_project / "graduate.yaml"
    text = spec.read_text().replace("temperature: 0", "temperature: hot").replace("concurrency: 16", "concurrency: many")
    spec.write_text(text.replace("budget_usd: 5.0", "budget_usd: lots"))
    res = graduate("check", str(tiny_project))
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 3, res.stderr
    for field in ("teacher.temperature", "teacher.concurrency", "teacher.budget_usd"):
        assert any(f"graduate.yaml: {field}:" in line for line in lines), (field, res.stderr)
    assert "more)" not in res.stderr


def test_run_checks_every_input_before_importing_anything(tiny_project):
    spec = tiny_project / "graduate.yaml"
    spec.write_text(spec.read_text().replace("path: ./comments.csv", "path: ./missing.csv").replace("gpt-3.5-turbo.simple.batch_output.jsonl", "gone.jsonl"))
    res = graduate("run", str(tiny_project))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "data[0] (jigsaw).path: file not found" in res.stderr and "teacher_logs[1].output: file not found" in res.stderr, res.stderr
    db = tiny_project / ".graduate" / "graduate.db"
    if db.exists():  # nothing was imported before the check failed
        import sqlite3

        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from teacher_calls").fetchone()[0] == 0


def test_labels_student_names_and_paths_that_look_like_rich_markup_print_as_written(tmp_path):
    """`[bold]`, `[extra]` in a label, a student's name or the project's folder are text, not markup:
    every table and line of `check`, `run`, `evaluate` and `data recipe`/`balance` shows them."""
    import shutil

    import yaml

    root = tmp_path / "[bold]proj"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "tiny", root, ignore=shutil.ignore_patterns(".graduate"))
    spec = yaml.safe_load((root / "graduate.yaml").read_text())
    spec["task"].update(labels=["[bold]", "[extra]"], positive_label="[extra]")
    spec["task"]["parse"]["values"] = {"0": "[bold]", "1": "[extra]"}
    spec["data"][0]["gold_values"] = {"0": "[bold]", "1": "[extra]"}
    spec["students"][1]["name"] = "[red]tfidf"
    spec["clean"] = {"balance": {"strategy": "class_weight"}}
    spec["test_sets"][0]["name"] = "test[v2]"
    (root / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    check = graduate("check", str(root))
    assert check.returncode == 0, check.stderr
    assert "[bold]proj" in check.stdout and "['[bold]', '[extra]']" in check.stdout
    run = graduate("run", str(root))
    assert run.returncode == 0, run.stderr
    assert "precision ([extra])" in run.stdout and "[red]tfidf" in run.stdout and "[bold]proj" in run.stdout
    evaluate = graduate("evaluate", str(root))
    assert evaluate.returncode == 0, evaluate.stderr
    assert "'[bold]':" in evaluate.stdout and "F1 ([extra])" in evaluate.stdout and "[red]tfidf" in evaluate.stdout
    recipe = graduate("data", "recipe", str(root))
    assert recipe.returncode == 0, recipe.stderr
    assert "[bold] " in recipe.stdout and "[extra] " in recipe.stdout  # the balance step's counts
    balance = graduate("data", "balance", str(root))
    assert balance.returncode == 0, balance.stderr
    assert "[bold]" in balance.stdout and "[extra]" in balance.stdout
    # the strategy is set: it says what it did, not that nothing is forced
    assert "strategy class_weight weights each class" in balance.stdout and "not forced" not in balance.stdout, balance.stdout
    errors = graduate("errors", str(root))
    assert errors.returncode == 0, errors.stderr
    assert re.search(r"│ test\[v2\] +│ +\d+ │", errors.stdout), errors.stdout  # the table of who was right
    audit = graduate("teacher", "audit", str(root))
    assert audit.returncode == 0, audit.stderr
    assert re.search(r"│ test\[v2\] +│ +\d+ \(", audit.stdout) and "its agreement with gold: test[v2] " in audit.stdout, audit.stdout


def test_check_and_run_name_the_rows_they_skip_and_refuse_a_file_without_rows(tiny_project):
    data = tiny_project / "comments.csv"
    first_id = data.read_text().splitlines()[1].split(",")[0]
    with data.open("a", newline="") as f:
        f.write(f"{first_id},a second row with that id,0,train\nzz-empty,,0,train\n")
    n = len(data.read_text().splitlines())
    check = graduate("check", str(tiny_project))
    assert check.returncode == 0, check.stderr
    assert f"comments.csv:{n - 1}: id '{first_id}' repeats line 2" in check.stdout and f"comments.csv:{n}: empty text" in check.stdout
    run = graduate("run", str(tiny_project))
    assert run.returncode == 0, run.stderr
    assert re.search(r"data jigsaw: 2 of \d+ rows skipped, e.g. \S*comments.csv:\d+: id ", run.stdout), run.stdout
    data.write_text("id,comment_text,is_bad,subsets\n\n")
    (tiny_project / ".graduate" / "graduate.db").unlink()
    for cmd in ("check", "run"):
        res = graduate(cmd, str(tiny_project))
        assert res.returncode == 2 and "comments.csv has a header but no rows" in res.stderr and "Traceback" not in res.stderr
    db = tiny_project / ".graduate" / "graduate.db"
    if db.exists():  # refused before any teacher log was imported
        import sqlite3

        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from teacher_calls").fetchone()[0] == 0


def test_check_names_a_base_model_or_layer_count_that_training_would_refuse(tiny_project):
    """`graduate check` reads each student's base model config (nothing loaded): too many layers,
    all layers frozen, a missing encoder directory (also an ensemble member's, a one-vs-rest base's)
    are one line each naming the student and the param, before any work; a good spec passes."""
    import yaml

    spec_path = tiny_project / "graduate.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["students"] = [
        {"kind": "encoder", "params": {"layers": 9}},
        {"kind": "encoder", "name": "frozen", "params": {"layers": 4, "frozen_layers": 4}},
        {"kind": "embed-logreg", "params": {"more_base_models": [str(tiny_project / "no-such-encoder")]}},
        {"kind": "ensemble", "params": {"members": [{"kind": "tfidf-logreg"}, {"kind": "encoder", "params": {"frozen_layers": 6}}]}},
    ]
    spec_path.write_text(yaml.safe_dump(spec))
    res = graduate("check", str(tiny_project))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    err = " ".join(res.stderr.split())
    assert "students[0] (encoder): student encoder: params.layers is 9 but the base model has 6 layers; give at most 6" in err, err
    assert "students[1] (frozen): student encoder: params.frozen_layers is 4 but the model has 4 layers" in err and "give at most 3" in err
    assert "students[2] (embed-logreg): student embed-logreg: params.more_base_models[0]" in err and "no-such-encoder' does not exist" in err
    assert "students[3] (ensemble): student ensemble: params.members[1].params: student encoder: params.frozen_layers is 6" in err
    assert not (tiny_project / ".graduate" / "graduate.db").exists()  # nothing imported

    spec["students"] = [{"kind": "encoder", "params": {"layers": 4, "frozen_layers": 2}}, {"kind": "embed-logreg", "params": {"more_base_models": ["minilm"]}}]
    spec_path.write_text(yaml.safe_dump(spec))
    ok = graduate("check", str(tiny_project))
    assert ok.returncode == 0 and "ok" in ok.stdout, ok.stderr


YAML_WORDS = ["yes", "no", "null", "true", "on", "off", "~", "it's", "a: b", "#bad", "[x]", "{y}", "*ref", "&anchor", "!tag", "1e3", "0x1F", '"q"', "- item", "%pct", "@at", "`tick`"]


def test_init_keeps_any_label_and_task_name_a_string_or_writes_nothing(tmp_path):
    # Labels and the task name were written into the YAML unquoted: yes/no became booleans, "a: b"
    # a mapping, "#bad" a comment, and the broken file was left behind (a rerun said --force).
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from typer.testing import CliRunner

    from graduate.cli.app import app
    from graduate.errors import GraduateError
    from graduate.spec import load_spec

    label = st.sampled_from(YAML_WORDS) | st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(lambda s: "," not in s)
    counter = iter(range(10**6))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(labels=st.lists(label, min_size=2, max_size=4), task=st.sampled_from(["spam: filter", "yes", "#t", "ok", " ", "", "t" * 201]))
    def check(labels: list[str], task: str) -> None:
        target = tmp_path / f"p{next(counter)}"
        res = CliRunner().invoke(app, ["init", str(target), "--labels", ",".join(labels), "--task", task])
        wanted = [x.strip() for x in labels if x.strip()]
        if res.exit_code == 0:
            spec, _ = load_spec(target)
            assert spec.task.labels == wanted and spec.task.name == task
        else:
            # the CLI's main() turns it into one line and exit 2 (in-process, the error itself)
            # nothing written, not even the folder (an empty task name left an empty project folder behind)
            assert isinstance(res.exception, GraduateError) and not target.exists(), res.output
            if not task.strip():
                assert "task.name: a task needs a visible name" in str(res.exception)

    check()
    res = CliRunner().invoke(app, ["init", str(tmp_path / "named"), "--labels", "yes,no", "--task", "spam: filter"])
    assert res.exit_code == 0, res.output
    assert load_spec(tmp_path / "named")[0].task.labels == ["yes", "no"]


def test_a_ladder_whose_gates_it_cannot_judge_does_not_say_they_failed(tiny_project):
    res = graduate("train", str(tiny_project), "--ladder", "--rungs", "majority,tfidf-logreg", "--until", "student.ece <= 0.2")
    assert res.returncode == 0, res.stderr
    assert "no rung met every gate" not in res.stdout and "no gate could be judged by the ladder" in res.stdout
    assert "not judged by the ladder" in res.stderr
    bad = graduate("train", str(tiny_project), "--ladder", "--rungs", " , ")
    assert bad.returncode == 2 and "no student kinds given" in bad.stderr


def test_a_path_the_system_refuses_is_one_line_naming_it(tiny_project, tmp_path):
    # A file name past 255 bytes, given as an argument, an option or in graduate.yaml, was an
    # "internal error" (OSError from the first stat) asking the user to report a bug.
    long = "x" * 300
    for args in (["check", str(tmp_path / long)], ["data", "review", "import", str(tiny_project), str(tmp_path / f"{long}.csv"), "--reviewer", "a"]):
        res = graduate(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert "internal error" not in res.stderr and res.stderr.count("\n") == 1, res.stderr
        assert f"error: {args[-1] if args[0] == 'check' else args[4]}: File name too long; give a shorter file name (at most 255 bytes a name)" in res.stderr, res.stderr
    text = (tiny_project / "graduate.yaml").read_text()
    (tiny_project / "graduate.yaml").write_text(text.replace("path: ./comments.csv", f"path: ./{long}.csv"))
    res = graduate("check", str(tiny_project))
    assert res.returncode == 2 and f"{tiny_project / long}.csv: File name too long" in res.stderr, res.stderr
