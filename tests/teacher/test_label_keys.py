"""Issue 12, defect 3 (and issue 17's duplicate rows): `graduate label` keys what it sends by the
text itself. A second file with the same name, or an edited file, gets its new texts sent; the
project's own data file adds no second copy of its rows; an id never maps two texts."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from servers import fake_openai_server
from teacher.live_teacher import cli_env, live_calls, point_teacher

from graduate.pipeline.project import Project
from graduate.store.schema import examples
from sqlalchemy import func, select


def write_items(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "comment_text"])
        w.writerows(rows)
    return path


def label(project: Path, items: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "graduate", "label", str(project), "--input", str(items), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env())


def row_value(out: str, name: str) -> int:
    line = next(line for line in out.splitlines() if name in line)
    return int(re.findall(r"(\d+)", line)[-1])


def example_count(project: Path) -> int:
    engine = Project.load(project).engine
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(examples)).scalar_one()
    engine.dispose()
    return n


def test_same_file_name_other_texts_and_edited_files_are_sent(tiny_project: Path, tmp_path: Path) -> None:
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url)
        first = label(tiny_project, write_items(tmp_path / "b1" / "items.csv", [("1", "first text"), ("2", "second text")]))
        assert first.returncode == 0, first.stderr
        assert row_value(first.stdout, "sent and answered") == 2
        # Not a terminal: progress comes as plain lines (issue 17: 14 silent minutes under nohup).
        assert "labelling with gpt-4-1106-preview: 2/2 (100%)" in first.stderr, first.stderr
        second = label(tiny_project, write_items(tmp_path / "b2" / "items.csv", [("1", "third text"), ("2", "fourth text")]))
        assert second.returncode == 0, second.stderr
        assert row_value(second.stdout, "sent and answered") == 2, second.stdout
        assert row_value(second.stdout, "answered from the call log") == 0
        # The first file edited in place, labelled again by its id column: only the new text is sent.
        edited = label(tiny_project, write_items(tmp_path / "b1" / "items.csv", [("1", "first text, edited"), ("2", "second text")]), "--id-column", "id")
        assert edited.returncode == 0, edited.stderr
        assert row_value(edited.stdout, "sent and answered") == 1, edited.stdout
        assert row_value(edited.stdout, "answered from the call log") == 1
    sent = sorted(r.request["messages"][-1]["content"].split("Input text: '")[1].split("'\n")[0] for r in live_calls(tiny_project))
    assert sent == sorted(["first text", "second text", "third text", "fourth text", "first text, edited"])
    # Every stored example of these files holds exactly one text per id.
    engine = Project.load(tiny_project).engine
    with engine.connect() as conn:
        rows = conn.execute(select(examples.c.source, examples.c.external_id, examples.c.text).where(examples.c.source == "label:items")).all()
    assert len({(r.source, r.external_id) for r in rows}) == len(rows) == 5


def test_labelling_the_projects_own_file_adds_no_second_copy(tiny_project: Path) -> None:
    Project.load(tiny_project).load_data()
    before = example_count(tiny_project)
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url)
        result = label(tiny_project, tiny_project / "comments.csv", "--id-column", "id", "--limit", "5")
    assert result.returncode == 0, result.stderr
    assert example_count(tiny_project) == before


def test_the_api_key_is_never_written_anywhere_the_project_keeps(tiny_project: Path, tmp_path: Path) -> None:
    """Issue 16's last point for `graduate label`: after labelling with a key the server requires,
    no file under the project (store, its WAL and shared memory, logs, reports) holds the key."""
    key = "sk-live-do-not-store-7f3a9c2e41"
    with fake_openai_server(api_key=key) as server:
        point_teacher(tiny_project, server.base_url)
        items = write_items(tmp_path / "k" / "items.csv", [("1", "a text to label"), ("2", "you stupid moron")])
        cmd = [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(items)]
        wrong = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env(OPENAI_API_KEY="sk-wrong"))
        assert wrong.returncode != 0 and "sk-wrong" not in wrong.stdout + wrong.stderr  # refused, and the key is not echoed
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env(OPENAI_API_KEY=key))
        assert done.returncode == 0, done.stderr
        assert row_value(done.stdout, "sent and answered") == 2
    assert key not in done.stdout + done.stderr
    files = [p for p in tiny_project.rglob("*") if p.is_file()]
    assert any(p.name.startswith("graduate.db") for p in files)
    leaked = [str(p) for p in files if key.encode() in p.read_bytes()]
    assert leaked == []


def test_a_refused_key_that_the_server_names_in_its_401_is_neither_printed_nor_stored(tiny_project: Path, tmp_path: Path) -> None:
    """OpenAI's 401 names the key it got ("Incorrect API key provided: sk-..."): a wrong key may
    still be somebody's secret (another project's, another provider's)."""
    wrong = "sk-other-projects-key-5b8d1e0c77"
    with fake_openai_server(api_key="sk-right", echo_key=True) as server:
        point_teacher(tiny_project, server.base_url)
        items = write_items(tmp_path / "k" / "items.csv", [("1", "a text to label"), ("2", "you stupid moron")])
        cmd = [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(items)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env(OPENAI_API_KEY=wrong))
    assert result.returncode != 0 and "Incorrect API key provided" in result.stderr, result.stderr
    assert wrong not in result.stdout + result.stderr
    leaked = [str(p) for p in tiny_project.rglob("*") if p.is_file() and wrong.encode() in p.read_bytes()]
    assert leaked == []
