"""graduate label --ray on a real local Ray cluster against the fault-injecting teacher, on the
PostgreSQL fixture: a worker killed midway is replaced, every call is answered, calls are paid twice
at most for what was in flight at the kill; two workers together stay within the budget. Every run
is a subprocess with a timeout, so a hung pipeline fails the test instead of the suite."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from graduate.pipeline.project import Project
from graduate.store.calls import live_spend
from graduate.store.schema import teacher_calls
from servers import fake_openai_server
from teacher.live_teacher import RAY_CORE_LINE, cli_env, point_teacher

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

N = 160
WORKERS = 2
CONCURRENCY = 8  # 4 per worker


def use_store(project: Path, url: str) -> None:
    path = project / "graduate.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["store"] = {"url": url}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def command(project: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "graduate", "label", str(project), "--input", str(project / "comments.csv"), "--id-column", "id",
            "--limit", str(N), "--ray", "local", "--workers", str(WORKERS), *extra]  # fmt: skip


def live_rows(project: Path) -> list:
    proj = Project.load(project)
    with proj.engine.connect() as conn:
        rows = conn.execute(select(teacher_calls).where(teacher_calls.c.source == "live")).all()
    proj.engine.dispose()
    return rows


def table_value(out: str, name: str) -> str:
    """The count column of the row of `graduate label`'s table whose name starts with ``name``."""
    line = next(line for line in out.splitlines() if line.strip(" │|").startswith(name))
    return line.strip(" │|").split("│")[-1].strip()


def label_workers() -> list:
    return [p for p in psutil.process_iter(["cmdline"]) if any("ray::LabelWorker" in part for part in (p.info["cmdline"] or []))]


@pytest.mark.postgres
def test_a_worker_killed_midway_is_replaced_and_only_its_calls_in_flight_are_paid_twice(tiny_project: Path, postgres_url: str) -> None:
    use_store(tiny_project, postgres_url)
    with fake_openai_server(latency=0.25, p500=0.05, seed=2) as server:
        point_teacher(tiny_project, server.base_url, concurrency=CONCURRENCY, requests_per_minute=60_000)
        # The dead worker's leases are given back at once; the live ones renew theirs every lease_s/3,
        # and a 4 s lease let a loaded machine's late renewal hand a live worker's call to another (paid twice).
        client = subprocess.Popen(command(tiny_project, "--lease-s", "30"), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 180
            while server.stats()["ok"] < N // 3:
                assert client.poll() is None, f"the run ended before the kill: {client.communicate()[1][-2000:]}"
                assert time.monotonic() < deadline, "no progress"
                time.sleep(0.05)
            victims = label_workers()
            assert victims, "no Ray worker process found"
            victims[0].send_signal(signal.SIGKILL)
            out, err = client.communicate(timeout=240)
        finally:
            if client.poll() is None:
                client.kill()
        served = server.stats(detail=True)
    assert client.returncode == 0, err[-3000:]
    died = re.search(r"1 Ray workers died and were replaced; (\d+) answers arrived after another worker's", err)
    assert died, err[-3000:]
    rows = live_rows(tiny_project)
    assert len(rows) == N and {r.status for r in rows} == {"ok"}
    assert Counter(r.cache_key for r in rows).most_common(1)[0][1] == 1
    # The table counts what the killed worker answered and paid for too (it counted the live ones' only).
    assert table_value(out, "sent and answered") == str(N), out
    assert table_value(out, "failed (after retries") == "0", out
    cost, stored = float(table_value(out, "cost of this run").lstrip("$")), sum(r.cost_usd for r in rows)
    late = int(died.group(1))  # paid twice: their second cost is in the run's budget slices, not in a row
    assert stored > 0 and stored - 0.00005 <= cost <= stored + 0.00005 + late * max(r.cost_usd for r in rows), (cost, stored, out)
    # Paid twice only for what the dead worker had in flight (its share of the concurrency), which the
    # run names: their first answers died with it, so their cost is said to be unknown, not guessed.
    lost = re.search(r"(\d+) calls that the workers that died had claimed were given back to be sent again \(a worker claims a call before sending it: some may "
                     r"have been sent, their answers not stored\): the teacher may have charged for those first answers too, so that cost is not known and "
                     r"not in the cost of this run", " ".join(err.split()))  # fmt: skip
    assert lost, err[-3000:]  # it had 4 calls at a time and >100 to go when killed
    in_flight = int(lost.group(1))
    assert served["paid_twice"] <= in_flight <= CONCURRENCY // WORKERS, (served, err[-3000:])
    assert served["ok"] == N + served["paid_twice"]


@pytest.mark.postgres
def test_two_workers_together_stay_within_the_budget(tiny_project: Path, postgres_url: str) -> None:
    use_store(tiny_project, postgres_url)
    budget = 0.05
    with fake_openai_server(latency=0.05, seed=3) as server:
        point_teacher(tiny_project, server.base_url, concurrency=CONCURRENCY, requests_per_minute=60_000, budget_usd=budget)
        result = subprocess.run(command(tiny_project), env=cli_env(), capture_output=True, text=True, timeout=240)
        served = server.stats()
    assert result.returncode == 3 and "budget of $0.05 reached" in result.stderr, result.stderr[-3000:]
    proj = Project.load(tiny_project)
    spent = live_spend(proj.engine)
    rows = live_rows(tiny_project)
    ok = [r for r in rows if r.status == "ok"]
    assert 10 < len(ok) < N and served["ok"] == len(ok)
    assert sum(r.cost_usd for r in ok) <= budget and spent <= budget + 1e-9  # slices closed: only what was paid


def test_a_remote_cluster_with_a_sqlite_store_is_refused_in_one_line(tiny_project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(tiny_project / "comments.csv"), "--ray", "10.0.0.1:6379"],
        env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "needs a store every worker reaches" in result.stderr and "postgresql" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.postgres
def test_label_on_ray_is_refused_while_another_machine_works_on_the_store(tiny_project: Path, postgres_url: str, tmp_path: Path) -> None:
    # One spender at a time: `label --ray` takes the project's work lock, as a local `label` does, so
    # it never spends beside another machine's label or run on the same PostgreSQL store.
    import shutil

    use_store(tiny_project, postgres_url)
    other = tmp_path / "other-machine"
    shutil.copytree(tiny_project, other)
    holder = Project.load(other)
    try:
        with fake_openai_server(latency=0.0, seed=4) as server:
            point_teacher(tiny_project, server.base_url)
            with holder.exclusive("graduate label"):
                result = subprocess.run(command(tiny_project), env=cli_env(), capture_output=True, text=True, timeout=240)
            served = server.stats()["ok"]
    finally:
        holder.engine.dispose()
    assert result.returncode == 2, result.stderr[-3000:]
    assert "another graduate process is working on this project's store" in result.stderr and "graduate label" in result.stderr
    assert served == 0 and live_rows(tiny_project) == []


def test_workers_killed_for_memory_are_named_in_one_line_and_nothing_labelled_is_lost_or_doubled(tiny_project: Path) -> None:
    # A SQLite store, as `--ray local` allows. Ray's memory monitor at a threshold every machine is
    # above kills each worker as it starts, as it would on a node that ran out of memory.
    from teacher.live_teacher import label_command, run_label

    on_ray = label_command(tiny_project, "--limit", "60", "--ray", "local", "--lease-s", "2")
    with fake_openai_server(latency=0.0, seed=5) as server:
        point_teacher(tiny_project, server.base_url, concurrency=CONCURRENCY, requests_per_minute=60_000)
        first = run_label(tiny_project, "--limit", "20")  # labelled before: kept through the failed run
        assert first.returncode == 0, first.stderr[-3000:]
        oom = cli_env(RAY_memory_usage_threshold="0.001", RAY_memory_monitor_refresh_ms="100")
        failed = subprocess.run(on_ray, env=oom, capture_output=True, text=True, timeout=240)
        answered = [r for r in live_rows(tiny_project) if r.status == "ok"]
        again = subprocess.run(on_ray, env=cli_env(), capture_output=True, text=True, timeout=240)
        served = server.stats()
    assert failed.returncode == 2, failed.stderr[-3000:]
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Ray workers died 4 times, the last: ") and "running low on memory" in last, failed.stderr[-3000:]
    assert last.endswith("answered calls are stored: run the same command again") and "internal error" not in failed.stderr
    assert len(answered) >= 20 and len({r.cache_key for r in answered}) == len(answered)  # the 20 labelled before are kept
    assert again.returncode == 0, again.stderr[-3000:]
    rows = live_rows(tiny_project)
    assert len(rows) == 60 and {r.status for r in rows} == {"ok"}
    assert Counter(r.cache_key for r in rows).most_common(1)[0][1] == 1
    assert served["ok"] == 60 and served["paid_twice"] == 0  # none sent twice: the first 20 came from the call log


def test_why_a_worker_died_is_one_line_naming_the_cause() -> None:
    import traceback

    from ray.exceptions import ActorDiedError, OutOfMemoryError, RayTaskError

    from graduate.pipeline.ray_label import died_because

    try:
        raise ValueError("no teacher at [bold]x[/]")
    except ValueError as exc:  # an error in the worker's __init__, as Ray reports it (its name coloured)
        failed = ActorDiedError(RayTaskError("\x1b[36mLabelWorker.__init__()\x1b[39m", traceback.format_exc(), exc, pid=7, ip="10.0.0.2"))
    assert died_because(failed) == "ValueError: no teacher at [bold]x[/]"
    oom = OutOfMemoryError("1 worker(s) were killed due to the node running low on memory.\nMemory on the node was 5GB used / 6GB limit")
    assert died_because(oom) == "1 worker(s) were killed due to the node running low on memory. Memory on the node was 5GB used / 6GB limit"
    assert "Ray's logs" in died_because(ActorDiedError())  # no reason: where to look, not an empty line
    long = died_because(OutOfMemoryError("x" * 1000))
    assert len(long) == 300 and "\n" not in long


def test_ray_workers_together_keep_to_the_teachers_concurrency(tiny_project: Path) -> None:
    # Each worker sends at least one call at a time: two workers on a teacher allowed one call at a
    # time sent two. The default is fewer workers; more than the limits allow are refused.
    from teacher.live_teacher import label_command

    with fake_openai_server(latency=0.2, seed=6) as server:
        point_teacher(tiny_project, server.base_url, concurrency=1, requests_per_minute=60_000)
        refused = subprocess.run(label_command(tiny_project, "--limit", "16", "--ray", "local", "--workers", "2"),
                                 env=cli_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert refused.stderr.strip().splitlines() == [
            "error: option: --workers: 2 workers would send more than teacher.concurrency (1) or requests_per_minute (60000) allow, "
            "as each sends at least one call at a time; pass --workers 1 or fewer"
        ]
        assert live_rows(tiny_project) == [] and server.stats()["requests"] == 0
        result = subprocess.run(label_command(tiny_project, "--limit", "16", "--ray", "local"), env=cli_env(), capture_output=True, text=True, timeout=240)
        served = server.stats()
    assert result.returncode == 0, result.stderr[-3000:]
    assert served["ok"] == 16 and served["max_in_flight"] == 1
    assert len(live_rows(tiny_project)) == 16


def test_ctrl_c_gives_back_the_stopped_workers_leases_so_a_rerun_sends_at_once(tiny_project: Path) -> None:
    # The workers claim calls (a 60 s lease each) and wait on a slow teacher; Ctrl-C stops the run.
    # Their leases used to stay until they lapsed, so a rerun waited up to --lease-s for those calls.
    from teacher.live_teacher import label_command

    on_ray = label_command(tiny_project, "--limit", "8", "--ray", "local", "--lease-s", "60")
    with fake_openai_server(latency=60.0, seed=7) as server:
        point_teacher(tiny_project, server.base_url, concurrency=CONCURRENCY, requests_per_minute=60_000, timeout_s=120)
        from teacher.live_teacher import interrupt_after

        held: list = []
        client, _, err = interrupt_after(
            on_ray, server, 2, wait_s=180, exit_s=120, before=lambda: held.extend(r for r in live_rows(tiny_project) if r.status == "pending" and r.lease_owner)
        )
    assert client.returncode == 130, err[-3000:]
    assert "interrupted: finished work is stored" in err
    assert len(held) >= 2  # the workers had claimed calls
    rows = live_rows(tiny_project)
    assert [r for r in rows if r.status == "pending" and r.lease_owner is not None] == []
    # The run says what it did and what it gave back: none answered, every claimed call freed, the
    # rest not yet claimed; a rerun sends all 8.
    flat = " ".join(err.split())
    stopped = re.search(
        r"stopped: of 8 calls, 0 were sent and answered and 0 failed \(stored\); (\d+) that the workers had claimed were given back "
        r"\(a worker claims a call before sending it: some may have been sent, their answers not stored\) and (\d+) were not yet claimed: a rerun sends these 8",
        flat,
    )
    assert stopped, err[-3000:]
    assert int(stopped.group(1)) >= len(held) and int(stopped.group(1)) + int(stopped.group(2)) == 8


def test_answers_cut_at_max_tokens_on_ray_are_failed_paid_calls_naming_the_fix(tiny_project: Path) -> None:
    """--ray as without: a cut answer is a failed call with its cost, and no re-run is advised."""
    from teacher.live_teacher import label_command

    with fake_openai_server(shape="length") as server:
        point_teacher(tiny_project, server.base_url, max_tokens=3)
        result = subprocess.run(label_command(tiny_project, "--limit", "4", "--ray", "local", "--workers", "1"),
                                env=cli_env(), capture_output=True, text=True, timeout=240)  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert "the answer was cut off at teacher.max_tokens (3) (finish_reason length); raise teacher.max_tokens" in result.stderr, result.stderr[-3000:]
    assert "4 calls were refused or cut off as sent" in result.stderr and "run the same command again" not in result.stderr, result.stderr[-3000:]
    # The run's error reaches the terminal, Ray's own notices do not ("Set ray log level ...").
    assert not RAY_CORE_LINE.search(result.stderr), result.stderr[-3000:]
    rows = live_rows(tiny_project)
    assert [r.status for r in rows] == ["error"] * 4 and all(r.cost_usd > 0 for r in rows)
    # At temperature 0 a rerun at the same settings would be cut off alike: nothing is paid for again.
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url, max_tokens=3)
        again = subprocess.run(label_command(tiny_project, "--limit", "4", "--ray", "local", "--workers", "1"),
                               env={**cli_env(), "COLUMNS": "300"}, capture_output=True, text=True, timeout=240)  # fmt: skip
        assert server.stats()["requests"] == 0
    assert again.returncode == 1, again.stderr[-3000:]
    assert "4 requests were not sent: their answers at these same settings (temperature 0) were cut off at teacher.max_tokens (3)" in " ".join(again.stderr.split()), again.stderr[-3000:]


def test_a_ray_run_whose_first_answers_are_all_cut_sends_no_more(tiny_project: Path) -> None:
    """As without --ray: max_tokens too small for every answer; every call was sent, paid for and
    failed alike (max_tokens 1 on 10,000 items), now a worker stops after its first CUT_STOP."""
    from graduate.teacher.labeling import CUT_STOP
    from teacher.live_teacher import label_command

    with fake_openai_server(shape="length") as server:
        point_teacher(tiny_project, server.base_url, max_tokens=3, concurrency=1)
        result = subprocess.run(label_command(tiny_project, "--limit", "12", "--ray", "local", "--workers", "1"),
                                env={**cli_env(), "COLUMNS": "300"}, capture_output=True, text=True, timeout=240)  # fmt: skip
        asked = server.stats()["ok"]
    flat = " ".join(result.stderr.split())
    assert result.returncode == 1, result.stderr[-3000:]
    assert asked == CUT_STOP and len(live_rows(tiny_project)) == 12
    assert f"the first answers were all cut off or held no text, so {12 - CUT_STOP} items were not sent" in flat, flat[-3000:]
    assert [r.status for r in live_rows(tiny_project)].count("error") == CUT_STOP


def test_the_cut_stop_counts_across_the_cluster_and_a_rerun_with_a_raised_max_tokens_sends_again(tiny_project: Path) -> None:
    """Each worker counted its own first answers: 3 workers paid for up to 3 * CUT_STOP cut answers,
    and a worker that joined late never learnt that the others had stopped. The count is read from
    the store, per run: the cluster pays for CUT_STOP and what was in flight; a rerun counts afresh."""
    from graduate.teacher.labeling import CUT_STOP
    from teacher.live_teacher import label_command

    workers, items = 3, 40
    on_ray = label_command(tiny_project, "--limit", str(items), "--ray", "local", "--workers", str(workers))
    with fake_openai_server(shape="length", latency=0.3) as server:
        point_teacher(tiny_project, server.base_url, max_tokens=3, concurrency=workers, requests_per_minute=60_000)
        result = subprocess.run(on_ray, env=cli_env(), capture_output=True, text=True, timeout=240)
        asked = server.stats()["requests"]
    flat = " ".join(result.stderr.split())
    assert result.returncode == 1, result.stderr[-3000:]
    assert CUT_STOP <= asked <= CUT_STOP + workers, asked  # one call in flight per worker at most
    rows = live_rows(tiny_project)
    assert [r.status for r in rows].count("error") == asked
    assert f"the first answers were all cut off or held no text, so {items - asked} items were not sent" in flat, flat[-3000:]
    assert f"{asked} calls were refused or cut off as sent" in flat, flat[-3000:]
    # Raised max_tokens: new requests, and the first run's cut answers do not stop this run.
    with fake_openai_server(latency=0.0) as server:
        point_teacher(tiny_project, server.base_url, max_tokens=200)
        again = subprocess.run(on_ray, env=cli_env(), capture_output=True, text=True, timeout=240)
        served = server.stats()
    assert again.returncode == 0, again.stderr[-3000:]
    assert served["ok"] == items and served["requests"] == items


def test_a_worker_that_raises_gives_back_its_leases_so_a_rerun_sends_every_call_once(tiny_project: Path) -> None:
    # A worker whose method raises (here the store stays locked past its busy timeout while it finishes
    # a call) is no actor death: its process lives on, and the calls it had claimed stayed leased to it,
    # so a rerun waited --lease-s for them. The run gives them back once the method has ended.
    import sqlite3

    from teacher.live_teacher import label_command, wait_for_requests

    items = 12
    on_ray = label_command(tiny_project, "--limit", str(items), "--ray", "local", "--lease-s", "600")
    db = Project.load(tiny_project).engine.url.database
    with fake_openai_server(latency=2.0, seed=8) as server:
        point_teacher(tiny_project, server.base_url, concurrency=4, requests_per_minute=60_000)
        client = subprocess.Popen(on_ray, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_requests(server, client, 2, timeout_s=180)
            lock = sqlite3.connect(db, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")  # the workers' writes wait 30 s (busy_timeout), then raise
            time.sleep(40)
            lock.execute("ROLLBACK")
            lock.close()
            _, err = client.communicate(timeout=180)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        # The worker's error crosses to the command as raised: one line naming the store, not a bug to report.
        assert client.returncode == 2, err[-3000:]
        assert f"error: could not lock the store {db} in time: another graduate command, a server or a database client holds it (or a deadlock); wait for it to finish or stop it, then run this again" in err, err[-3000:]
        assert "internal error" not in err, err[-3000:]
        assert [r.id for r in live_rows(tiny_project) if r.status == "pending" and r.lease_owner is not None] == [], err[-3000:]
        again = subprocess.run(on_ray, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    rows = live_rows(tiny_project)
    assert len(rows) == items and {r.status for r in rows} == {"ok"}
    assert Counter(r.cache_key for r in rows).most_common(1)[0][1] == 1


def test_input_that_is_not_utf8_is_refused_in_the_same_line_with_and_without_ray(tiny_project: Path) -> None:
    from teacher.live_teacher import label_command

    bad = tiny_project / "comments.csv"
    bad.write_bytes(bad.read_bytes().replace(b"castle", b"c\xe9stle", 1))
    lines = []
    for extra in ((), ("--ray", "local")):
        result = subprocess.run(label_command(tiny_project, *extra), env=cli_env(), capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr[-3000:]
        lines.append(result.stderr.strip().splitlines())
    assert lines[0] == lines[1] == [f"error: {bad}:2: not UTF-8 (byte 0xe9); re-save the file as UTF-8"]
    assert live_rows(tiny_project) == []


GONE_SCRIPT = """
import sys, time
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError
from graduate.pipeline.ray_label import _gone

ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)

@ray.remote(num_cpus=0.1, max_restarts=0)
class Busy:  # a worker still sending: its one method runs on
    def run(self):
        time.sleep(600)
    def pid(self):
        return 0

actor = Busy.remote()
ref = actor.run.remote()
ray.wait([ref], timeout=3)
# Ray's error when a call to a worker fails on the network and no death is reported: it may live on
gone = _gone(ray, actor, ActorUnavailableError("RPC Error: connection reset", None))
try:
    ray.get(ref, timeout=20)
    alive = True
except ActorDiedError:
    alive = False
except ray.exceptions.GetTimeoutError:
    alive = True
print("RESULT", gone, alive)
sys.stdout.flush()
"""


def test_a_worker_ray_cannot_reach_is_not_taken_for_dead_until_it_is_killed() -> None:
    # ActorUnavailableError is a RayActorError ("the task may or may not have been executed"): a
    # worker whose task failed so may still be sending, and its leases were given back at once, so
    # its replacement sent its claimed calls again. Only a death Ray reports, or a kill seen through,
    # frees them: afterwards the worker must be gone.
    result = subprocess.run([sys.executable, "-c", GONE_SCRIPT], env=cli_env(), capture_output=True, text=True, timeout=240)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("RESULT")), None)
    assert line is not None, (result.stdout[-2000:], result.stderr[-3000:])
    gone, alive = line.split()[1:]
    assert alive == "False" or gone == "False", line  # never given back while it lives
    assert (gone, alive) == ("True", "False"), line  # killed here, then given back
