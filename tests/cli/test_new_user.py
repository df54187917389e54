"""Issue 17: what a new user hit on a fresh task, through the real CLI."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from graduate.students.encoder import auto_epochs


def graduate(*args: str, columns: int = 200, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("GRADUATE_STORE_URL", "OPENAI_API_KEY")}
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=300, env={**base, "COLUMNS": str(columns), **(env or {})})


def test_spec_help_keeps_bracketed_words_and_wraps_instead_of_cutting():
    wide = graduate("spec-help").stdout
    assert "pip install 'graduate[local]'" in wide and "[train*]" in wide
    narrow = graduate("spec-help", columns=80)
    assert narrow.returncode == 0 and "…" not in narrow.stdout  # folded, never cut


def test_no_help_text_loses_a_bracketed_word_to_rich_markup():
    """Typer renders --help as Rich markup: `'graduate[ray]'` in a help text printed as `'graduate'`."""
    import inspect

    import typer
    from rich.text import Text

    from graduate.cli.app import app

    def walk(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])

    lost = []
    for path, cmd in walk(typer.main.get_command(app), ["graduate"]):
        for text in [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]:
            text = inspect.cleandoc(text)
            if Text.from_markup(text).plain != text.replace("\\[", "["):
                lost.append(f"{' '.join(path)}: {text}")
    assert not lost, lost
    for command in ("label", "predict"):
        assert "pip install 'graduate[ray]'" in graduate(command, "--help", columns=400).stdout


def test_students_list_names_the_kinds_that_take_label_sets_themselves():
    from graduate.students.registry import LADDER, student_class

    out = " ".join(graduate("students", "list", columns=300).stdout.split())
    themselves = [k for k in LADDER if student_class(k).takes_multi_label]
    per_label = [k for k in LADDER if not student_class(k).takes_multi_label]
    assert len(themselves) > 1 and per_label  # the line used to name the encoder alone
    assert f"multi-label tasks: {', '.join(themselves)} take label sets themselves; {', '.join(per_label)} is trained once per label (one-vs-rest)" in out, out


def test_types_in_students_show_and_spec_help_read_as_written_not_as_pydantic_internals():
    from graduate.students.params import describe
    from graduate.spec.base import type_name
    from graduate.spec.teacher import TermsSpec
    from graduate.students.registry import STUDENTS, student_class

    types = {f"{kind}.{name}": type_ for kind in STUDENTS for name, type_, _, _ in describe(student_class(kind).Params)}
    assert types["encoder.epochs"] == "float > 0 | Literal['auto']"  # was Union[Annotated[float, FieldInfo(...)], ...]
    assert types["tfidf-logreg.class_weight"] == "Literal['balanced'] | dict[str, float] | None"
    assert type_name(TermsSpec.model_fields["train_allowed"].annotation) == "bool | Literal['unknown']"
    shown = graduate("students", "show", "encoder", columns=400).stdout
    spec_help = graduate("spec-help", columns=400).stdout
    assert "epochs" in shown and "train_allowed" in spec_help
    for text in (*types.values(), shown, spec_help):
        assert not any(junk in text for junk in ("Union[", "Annotated[", "FieldInfo", "typing.", "graduate.spec.", "graduate.students.")), text


def test_a_missing_api_key_is_one_line_before_anything_is_sent(tmp_path):
    project = tmp_path / "p"
    assert graduate("init", str(project)).returncode == 0
    items = project / "data" / "items.csv"
    t0 = time.perf_counter()
    # The scaffold's teacher is api.openai.com, unreachable here: the old path retried for ~24 s.
    res = graduate("label", str(project), "--input", str(items))
    elapsed = time.perf_counter() - t0
    assert res.returncode != 0
    assert "OPENAI_API_KEY is not set, so nothing was sent" in " ".join(res.stderr.split()), res.stderr
    assert "cannot connect" not in res.stderr and elapsed < 20


def test_the_scaffold_has_disjoint_train_and_test_texts(tmp_path):
    project = tmp_path / "p"
    assert graduate("init", str(project), "--labels", "World,Sports,Business,Sci/Tech").returncode == 0
    with (project / "data" / "items.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    train = {r["text"] for r in rows if r["split"] == "train"}
    test = {r["text"] for r in rows if r["split"] == "test"}
    assert train and test and not train & test
    assert graduate("check", str(project)).returncode == 0


def test_init_with_a_local_teacher_is_a_valid_constrained_spec(tmp_path):
    project = tmp_path / "p"
    res = graduate("init", str(project), "--teacher", "local", "--labels", "World,Sports,Business,Sci/Tech")
    assert res.returncode == 0, res.stderr
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    t = spec["teacher"]
    assert t["kind"] == "local" and t["logprobs"] is True and t["response_format"]["schema"]["properties"]["label"]["enum"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert '{"label": "..."}' in t["prompt"] and spec["task"]["parse"] == {"kind": "json_key", "key": "label"}
    assert "teacher audit" in " ".join(res.stdout.split())
    assert graduate("check", str(project)).returncode == 0


def test_encoder_epochs_follow_the_data_size():
    # 2 epochs underfit a 400-item set (0.600 vs 0.755 at 10): auto gives small sets more passes.
    assert auto_epochs(400, 32) == 10 and auto_epochs(8078, 32) == 2 and auto_epochs(3000, 32) == 6


def test_bad_options_and_proxy_routes_are_one_line_errors(tmp_path):
    res = graduate("init", str(tmp_path / "p"), "--teacher", "gpt")
    assert res.returncode == 2 and "--teacher 'gpt': use openai or local" in res.stderr
    project = tmp_path / "q"
    assert graduate("init", str(project)).returncode == 0
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    spec["proxy"] = {"routes": ["POST /chat/completions", "FETCH /../files"]}
    spec["serve"] = {"body_timeout_s": 0}
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    res = graduate("check", str(project))
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 2, res.stderr
    assert any("proxy.routes" in line and "'FETCH /../files'" in line for line in lines)
    assert any("serve.body_timeout_s" in line for line in lines)


def test_predict_killed_midway_leaves_no_truncated_output(tmp_path):
    import signal

    from graduate.students.registry import make_student, save_student

    # A saved student and a large input: `graduate predict` needs a project, so call the library
    # through a small script in a subprocess and kill it with SIGKILL midway.
    student = make_student("tfidf-logreg", ["ok", "bad"])
    student.fit(["you idiot", "thanks", "stupid", "nice"] * 5, ["bad", "ok", "bad", "ok"] * 5)
    save_student(student, tmp_path / "student")
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        w.writerows([f"comment number {i}, you idiot"] for i in range(300_000))
    out = tmp_path / "out.csv"
    code = (
        "import sys; from pathlib import Path; from graduate.students.registry import load_student; "
        "from graduate.students.csv_predict import predict_csv; "
        f"predict_csv(load_student(Path({str(tmp_path / 'student')!r})), Path({str(src)!r}), Path({str(out)!r}), text_column='text', batch_size=500)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    partial = out.with_name("out.csv.partial")
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 0) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "finished before it could be killed: make the input larger"
    assert not out.exists()  # never a short OUTPUT: the rows written so far stay in OUTPUT.partial
    assert src.stat().st_size > 0
