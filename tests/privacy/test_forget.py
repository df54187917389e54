"""`graduate privacy forget|purge`: an item deleted from every table and file the project writes
(the database's bytes too, after compaction), never added back by a data file or a log that still
holds it, the frozen test set's next version named; raw requests and answers purged past retention
while labels survive."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from graduate.errors import TestSetChangedError
from graduate.pipeline.project import Project
from graduate.store.schema import examples, forgotten, teacher_calls, traffic
from teacher.live_teacher import cli_env

ITEM = "00e3f344cc9fef4a"  # test.balanced; the recorded teachers answered it
TEXT = "Who is the man in the high castle?"


def store_bytes(project: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (project / ".graduate").glob("graduate.db*"))


def every_file(project: Path) -> str:
    out = []
    for p in (project / ".graduate").rglob("*"):
        if p.is_file() and not p.name.startswith("graduate.db"):
            out.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(out)


def count(proj: Project, table) -> int:
    with proj.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_forget_an_item_everywhere_and_it_never_comes_back(trained_copy: Path, tmp_path: Path) -> None:
    project = trained_copy
    proj = Project.load(project)
    proj.report()  # the HTML report lists test items: a file that holds the text
    queue = project / ".graduate" / "review" / "queue.csv"
    queue.parent.mkdir(parents=True, exist_ok=True)
    with queue.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerows([["id", "text", "corrected_label"], ["1", TEXT, ""], ["2", "another comment", ""]])
    assert TEXT.encode() in store_bytes(project)
    calls_before, examples_before = count(proj, teacher_calls), count(proj, examples)

    report = proj.forget(item=ITEM)
    assert report.examples == 1 and report.counts["examples"] == 1 and report.counts["teacher_calls"] >= 2  # GPT-4 and GPT-3.5 logs
    assert report.counts["labels"] >= 2  # gold + the teacher's label
    assert report.test_sets == [{"name": "test.balanced", "version": 1, "next_version": 2}]
    assert "review/queue.csv" in report.files_rewritten
    proj.engine.dispose()
    assert TEXT.encode() not in store_bytes(project)  # compacted: no deleted page or WAL frame keeps it
    assert TEXT not in every_file(project) and "another comment" in queue.read_text()

    proj = Project.load(project)
    assert count(proj, examples) == examples_before - 1 and count(proj, teacher_calls) == calls_before - report.counts["teacher_calls"]
    # the data file and the teacher logs still hold it: nothing comes back
    proj.load_data()
    assert count(proj, examples) == examples_before - 1
    logs = [(project / log.input, project / log.output) for log in proj.spec.teacher_logs]
    for i, (inp, out) in enumerate(logs):
        lines_in = [l for l in inp.read_text().splitlines() if ITEM in l]
        lines_out = [l for l in out.read_text().splitlines() if ITEM in l]
        (tmp_path / f"in{i}.jsonl").write_text("\n".join(lines_in) + "\n")
        (tmp_path / f"out{i}.jsonl").write_text("\n".join(lines_out) + "\n")
        again = proj.import_batch(tmp_path / f"in{i}.jsonl", tmp_path / f"out{i}.jsonl")
        assert again.added == 0 and again.forgotten == len(lines_in) >= 1
    # the frozen-test-set check holds: the set changed, its next version is asked for
    with pytest.raises(TestSetChangedError, match="version"):
        proj.load_test_sets()
    with proj.engine.connect() as conn:
        (row,) = conn.execute(select(forgotten)).all()
    assert row.kind == "item" and ITEM not in json.dumps(row.counts) and row.what_hash != ITEM


def test_forget_removes_a_text_with_quotes_from_the_html_report(trained_copy: Path) -> None:
    """Jinja escapes ' and " as &#39; and &#34; (html.escape: &#x27; and &quot;): the report that
    lists the item must go all the same."""
    from markupsafe import escape

    item = "08788a332618784e"  # test.balanced, shown among the report's distillation-gap items
    proj = Project.load(trained_copy)
    (text,) = [e.text for e in proj.load_test_sets()[0].examples if e.external_id == item]
    assert "'" in text
    report_html = proj.report()
    assert str(escape(text)) in report_html.read_text()

    report = proj.forget(item=item)
    assert "report.html" in report.files_removed
    assert str(escape(text)) not in every_file(trained_copy) and text not in every_file(trained_copy)


def test_forget_a_match_in_calls_and_traffic_and_nothing_else(trained_copy: Path) -> None:
    from graduate.store.traffic import write_traffic
    from graduate.store.db import now

    proj = Project.load(trained_copy)
    email = "someone.private@example.com"
    base = {"created_at": now(), "endpoint": "classify", "mode": "student", "route": "student", "reason": "student", "status": 200, "latency_ms": 1.0}
    write_traffic(proj.engine, [{**base, "request_id": "a" * 32, "text": f"mail {email} now", "answer": "ok"}, {**base, "request_id": "b" * 32, "text": "nothing", "answer": "ok"}])
    before = count(proj, examples)
    report = proj.forget(match=email)
    assert report.examples == 0 and report.counts.get("traffic") == 1 and count(proj, examples) == before
    with proj.engine.connect() as conn:
        assert [r.text for r in conn.execute(select(traffic.c.text))] == ["nothing"]


def test_an_item_with_a_text_past_sqlites_like_limit_is_forgotten_and_only_it(trained_copy: Path) -> None:
    """SQLite refuses a LIKE pattern over 50,000 bytes: forgetting an item whose text is longer (a
    document, not a comment) was an internal error, so it could not be deleted at all. A text that
    only begins like it is kept."""
    from graduate.store.db import now
    from graduate.store.traffic import write_traffic

    long = "my address is 1 Long Road, é% _ \\ " * 2_000  # about 70,000 characters
    with (trained_copy / "comments.csv").open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    with (trained_copy / "comments.csv").open("a", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, fieldnames=header).writerow({**{c: "" for c in header}, "id": "long-item", "comment_text": long, "is_bad": "0", "subsets": "train"})
    proj = Project.load(trained_copy)
    proj.load_data()
    base = {"created_at": now(), "endpoint": "classify", "mode": "student", "route": "student", "reason": "student", "status": 200, "latency_ms": 1.0}
    write_traffic(proj.engine, [{**base, "request_id": "a" * 32, "text": long, "answer": "ok"}, {**base, "request_id": "b" * 32, "text": long[:-40], "answer": "ok"}])
    before = count(proj, examples)
    report = proj.forget(item="long-item")
    assert report.examples == 1 and report.counts.get("traffic") == 1 and count(proj, examples) == before - 1
    with proj.engine.connect() as conn:
        assert [r.text for r in conn.execute(select(traffic.c.text))] == [long[:-40]]
    assert proj.forget(match=long[:-40]).counts.get("traffic") == 1  # a --match as long works too


def test_a_match_in_hundreds_of_items_forgets_every_one(tiny_project: Path) -> None:
    """One query OR-ed every matched item's LIKE patterns: from about 120 items SQLite refused it
    (expression tree deeper than 1,000), an internal error, so a common address could not be forgotten."""
    from graduate.store.db import now
    from graduate.store.traffic import write_traffic

    with (tiny_project / "comments.csv").open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    with (tiny_project / "comments.csv").open("a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        for i in range(300):
            w.writerow({**{c: "" for c in header}, "id": f"mail-{i}", "comment_text": f"write to user{i}@mail.example please", "is_bad": "0", "subsets": "train"})
    proj = Project.load(tiny_project)
    proj.load_data()
    base = {"created_at": now(), "endpoint": "classify", "mode": "student", "route": "student", "reason": "student", "status": 200, "latency_ms": 1.0}
    write_traffic(proj.engine, [{**base, "request_id": f"{i:032d}", "text": f"ask user{i}@mail.example", "answer": "ok"} for i in range(300)])
    before = count(proj, examples)
    report = proj.forget(match="@mail.example")
    assert report.examples == 300 and count(proj, examples) == before - 300
    assert report.counts.get("traffic") == 300 and count(proj, traffic) == 0


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(match=st.text(alphabet=st.sampled_from("%_\\'\"[]*?ab é\u0000"), min_size=3, max_size=12).filter(lambda m: len(m.strip()) >= 3))
def test_a_match_is_literal_text(trained_tiny: Path, tmp_path_factory: pytest.TempPathFactory, match: str) -> None:
    """LIKE's own characters (% _ \\) and quotes in --match are literal: only texts holding exactly
    that are deleted (none of the fixture's comments hold these strings)."""
    import shutil

    project = tmp_path_factory.mktemp("m") / "tiny"
    shutil.copytree(trained_tiny, project)
    proj = Project.load(project)
    before = count(proj, examples)
    with proj.engine.connect() as conn:
        holding = sum(match in t for t in conn.execute(select(examples.c.text)).scalars())
    report = proj.forget(match=match)
    assert report.examples == holding and count(proj, examples) == before - holding
    proj.engine.dispose()


def test_purge_drops_raw_requests_past_retention_and_keeps_labels(trained_copy: Path) -> None:
    raw = yaml.safe_load((trained_copy / "graduate.yaml").read_text())
    raw["privacy"] = {"retention_days": 0}
    (trained_copy / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(trained_copy)
    built = proj.build_training_set()
    report = proj.purge()
    assert report.calls == count(proj, teacher_calls) > 0
    with proj.engine.connect() as conn:
        rows = conn.execute(select(teacher_calls.c.request, teacher_calls.c.response, teacher_calls.c.content)).all()
    assert all(r.request.get("purged") and "messages" not in r.request and r.response is None for r in rows)
    assert {r.content for r in rows} <= {'{"is_bad": 0}', '{"is_bad": 1}', None}
    again = proj.build_training_set()
    assert [(e.id, lab) for e, lab in zip(again.examples, again.labels)] == [(e.id, lab) for e, lab in zip(built.examples, built.labels)]
    assert proj.purge().calls == 0  # already purged


def graduate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=120, env=cli_env())


def test_cli_forget_errors_are_one_line_and_the_log_holds_no_text(trained_copy: Path) -> None:
    neither = graduate("privacy", "forget", str(trained_copy))
    assert neither.returncode != 0 and "--item ID or --match TEXT" in neither.stderr and len(neither.stderr.strip().splitlines()) == 1
    unknown = graduate("privacy", "forget", str(trained_copy), "--item", "no-such-id")
    assert unknown.returncode != 0 and "no item with id 'no-such-id'" in unknown.stderr
    done = graduate("privacy", "forget", str(trained_copy), "--item", ITEM)
    assert done.returncode == 0, done.stderr
    assert "test set test.balanced held it" in done.stdout and "version: 2" in done.stdout
    log = graduate("privacy", "log", str(trained_copy))
    assert log.returncode == 0 and "1 deletions" in log.stdout and TEXT not in log.stdout
    purge = graduate("privacy", "purge", str(trained_copy))
    assert purge.returncode != 0 and "privacy.retention_days is not set" in purge.stderr


def _item_state(project: Path) -> tuple[int, int]:
    """(examples with the item's text, calls whose request holds it), read from a fresh engine."""
    from sqlalchemy import String, cast

    proj = Project.load(project)
    with proj.engine.connect() as conn:
        ex = conn.execute(select(func.count()).select_from(examples).where(examples.c.text == TEXT)).scalar_one()
        calls = conn.execute(select(func.count()).select_from(teacher_calls).where(cast(teacher_calls.c.request, String).like(f"%{TEXT[:20]}%"))).scalar_one()
    proj.engine.dispose()
    return ex, calls


@pytest.mark.parametrize("command", [["forget", "--item", ITEM], ["purge"]])
def test_a_kill_9_midway_leaves_all_or_nothing_and_a_rerun_finishes(trained_tiny: Path, tmp_path: Path, command: list[str]) -> None:
    """`graduate privacy forget|purge` killed with SIGKILL at points spread over a whole run: the
    store opens, the item (or the raw requests) is either wholly there or wholly gone, never half,
    and running the command again completes."""
    import shutil
    import signal
    import time

    def fresh(name: str) -> Path:
        project = tmp_path / name / "tiny"
        shutil.copytree(trained_tiny, project)
        raw = yaml.safe_load((project / "graduate.yaml").read_text())
        raw["privacy"] = {"retention_days": 0}
        (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        return project

    argv = lambda project: [sys.executable, "-m", "graduate", "privacy", command[0], str(project), *command[1:]]  # noqa: E731
    start = time.perf_counter()
    whole = fresh("whole")
    assert subprocess.run(argv(whole), capture_output=True, text=True, timeout=120, env=cli_env()).returncode == 0
    duration = time.perf_counter() - start
    before, after = _item_state(fresh("untouched")), _item_state(whole)
    assert before != after  # the command changes what is checked
    for i, share in enumerate((0.5, 0.7, 0.8, 0.9, 0.95)):
        project = fresh(f"k{i}")
        proc = subprocess.Popen(argv(project), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env())
        time.sleep(duration * share)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert _item_state(project) in (before, after), share
        assert subprocess.run(argv(project), capture_output=True, text=True, timeout=120, env=cli_env()).returncode == 0
        assert _item_state(project) == after
        if command[0] == "forget":  # files and freed pages too, whatever the kill interrupted
            assert TEXT not in every_file(project) and TEXT.encode() not in store_bytes(project)


def test_a_log_recorded_with_another_of_the_projects_prompts_brings_nothing_back(trained_copy: Path) -> None:
    # The item was forgotten; then the chain-of-thought log (another prompt, so other cache keys)
    # is imported. The audit config names that prompt, so the item's text is recognised in it.
    example = yaml.safe_load((Path(__file__).parents[2] / "examples" / "toxicity" / "graduate.yaml").read_text())
    cot = next(c for c in example["audit"]["configs"] if c["name"] == "gpt-4 cot")
    spec_path = trained_copy / "graduate.yaml"
    raw = yaml.safe_load(spec_path.read_text())
    raw["audit"] = {"configs": [{"name": "gpt-4 cot", "model": cot["model"], "prompt_name": "cot", "prompt": cot["prompt"]}]}
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = Project.load(trained_copy)
    proj.forget(item=ITEM)
    cot_dir = Path(__file__).parents[1] / "fixtures" / "tiny_cot"
    report = proj.import_batch(cot_dir / "gpt-4-1106-preview.cot.batch_input.jsonl", cot_dir / "gpt-4-1106-preview.cot.batch_output.jsonl")
    lines = [line for line in (cot_dir / "gpt-4-1106-preview.cot.batch_input.jsonl").read_text().splitlines() if line.strip()]
    assert report.forgotten == 1 and report.added == len(lines) - 1
    with proj.engine.connect() as conn:
        held = [r for (r,) in conn.execute(select(teacher_calls.c.request)) if TEXT in json.dumps(r, ensure_ascii=False)]
    assert held == []


def test_forget_rewrites_a_csv_that_holds_the_text_with_doubled_quotes(trained_copy: Path) -> None:
    """A CSV cell spells a double quote as two: the errors CSVs that list the item are rewritten."""
    item = "161a98efcf8ea552"  # test.balanced; its text holds double quotes
    proj = Project.load(trained_copy)
    (text,) = [e.text for e in proj.load_test_sets()[0].examples if e.external_id == item]
    assert '"' in text
    files = proj.error_analysis().export(trained_copy / ".graduate" / "errors")
    holding = [p for p in files.values() if any(text in cell for row in csv.reader(p.open(newline="")) for cell in row)]
    assert holding

    report = proj.forget(item=item)
    assert {f"errors/{p.name}" for p in holding} <= set(report.files_rewritten)
    for p in holding:
        assert all(text not in cell for row in csv.reader(p.open(newline="")) for cell in row)


def test_forget_and_purge_stop_at_once_while_a_run_works(trained_copy: Path) -> None:
    """A run at work holds the item's text and would write it back: forget and purge stop at once,
    naming it, and delete nothing."""
    import signal

    from graduate.errors import BusyError

    hold = (
        "import sys, time\nfrom graduate.pipeline.project import Project\n"
        "with Project.load(sys.argv[1]).exclusive('graduate run'):\n    print('held', flush=True)\n    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(trained_copy)], stdout=subprocess.PIPE, text=True, env=cli_env())
    try:
        assert holder.stdout.readline().strip() == "held"
        proj = Project.load(trained_copy)
        before = count(proj, examples)
        with pytest.raises(BusyError, match="graduate run"):
            proj.forget(item=ITEM)
        with pytest.raises(BusyError, match="graduate run"):
            proj.purge()
        assert count(proj, examples) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)


def test_forget_drops_a_json_lines_record_whole_when_its_text_holds_a_line_separator(trained_copy: Path) -> None:
    """A JSON Lines file keeps U+2028, NEL and form feeds raw inside its strings (``ensure_ascii=False``).
    Forgetting split the file at them as lines, so the record's other half stayed behind, invalid JSON."""
    import json

    proj = Project.load(trained_copy)
    secret = "call me on 555 0100"
    log = proj.workdir / "exports" / "records.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    records = [{"text": f"{secret}\u2028second line\x85third\x0cfourth", "n": 1}, {"text": "nothing private", "n": 2}]
    log.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    report = proj.forget(match=secret)
    assert str(log.relative_to(proj.workdir)) in report.files_rewritten
    assert [json.loads(line) for line in log.read_text(encoding="utf-8").split("\n") if line] == [records[1]]
