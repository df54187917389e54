"""Ctrl-C (SIGINT) during a long command: one line saying that finished work is stored, exit 130.
Typer turns a KeyboardInterrupt into a silent exit 130, so the line was never printed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from servers import fake_openai_server
from teacher.live_teacher import interrupt_after, label_command, point_teacher


def interrupt_label(project: Path, server, *, items: int, after_requests: int) -> tuple[subprocess.Popen, str, str]:
    """``graduate label --limit ITEMS`` against ``server``, sent SIGINT once the server has seen
    ``after_requests`` requests: the process, its stdout and its stderr."""
    point_teacher(project, server.base_url, concurrency=2, timeout_s=60, max_retries=0)
    return interrupt_after(label_command(project, "--limit", str(items)), server, after_requests, wait_s=90, exit_s=60)


def test_ctrl_c_during_label_says_work_is_stored_and_exits_130(tiny_project: Path) -> None:
    with fake_openai_server(latency=30) as server:  # every answer takes 30 s: the command is mid-call
        client, out, err = interrupt_label(tiny_project, server, items=5, after_requests=1)
    assert client.returncode == 130, (client.returncode, out, err)
    assert "interrupted: finished work is stored; run the same command again to resume" in err, err
    assert "internal error" not in err and "Traceback" not in err, err


def test_ctrl_c_during_plain_label_says_what_was_stored_and_a_rerun_sends_only_the_rest(tiny_project: Path) -> None:
    # Without --ray, Ctrl-C said only "interrupted": not how many calls were answered, in flight or
    # not sent, nor what they cost. The labelling code's own counts say it, as --ray's line does.
    import re
    from collections import Counter

    from teacher.live_teacher import live_calls, run_label

    items = 8
    with fake_openai_server(latency=1.5) as server:  # slow answers: the signal lands with calls in flight
        client, out, err = interrupt_label(tiny_project, server, items=items, after_requests=4)  # two answered, two more sent
    assert client.returncode == 130, (client.returncode, out, err)
    flat = " ".join(err.split())
    said = re.search(
        r"stopped: of (\d+) calls, (\d+) were sent and answered and (\d+) failed \(stored\), costing \$[0-9.]+; (\d+) were in flight, their answers "
        r"not stored \(the teacher may have charged for them\), and (\d+) were not sent: a rerun sends these (\d+)",
        flat,
    )
    assert said, flat
    total, answered, failed, in_flight, unsent, rerun = map(int, said.groups())
    assert (total, failed) == (items, 0) and answered >= 2 and 1 <= in_flight <= 2, flat
    assert in_flight + unsent == rerun == items - answered, flat
    assert "interrupted: finished work is stored; run the same command again to resume" in flat, flat
    assert "internal error" not in err and "Traceback" not in err, err
    statuses = Counter(r.status for r in live_calls(tiny_project))
    assert statuses == Counter({"ok": answered, "pending": in_flight}), statuses  # the in-flight calls' rows, reused by the rerun

    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url)
        again = run_label(tiny_project, "--limit", str(items))
        served = server.stats()
    assert again.returncode == 0, again.stderr
    assert served["requests"] == served["ok"] == rerun, served  # only the calls not answered
    rows = live_calls(tiny_project)
    assert len(rows) == items and {r.status for r in rows} == {"ok"}
    assert Counter(r.cache_key for r in rows).most_common(1)[0][1] == 1  # no call stored twice


def test_the_stopped_line_says_a_rerun_also_tries_the_failed_calls_that_may_pass() -> None:
    """Both Ctrl-C lines (plain and --ray) count the failed calls a rerun tries again, and only when
    there are some: a rerun resends timeouts, rate limits and server errors, not refusals."""
    from graduate.cli.console import err_console
    from graduate.cli.label import _say_stopped, _say_stopped_plain
    from graduate.pipeline.ray_label import RayLabelReport
    from graduate.teacher.labeling import LabelStats

    def said(call) -> str:
        with err_console.capture() as cap:
            call()
        return " ".join(cap.get().split())

    plain = LabelStats(sent=3, failed=2, retryable=1, to_send=8)
    assert said(lambda: _say_stopped_plain(plain)).endswith("a rerun sends these 3, and tries again the 1 failed ones that may pass (timeouts, rate limits, server errors)")
    plain.retryable = 0
    assert said(lambda: _say_stopped_plain(plain)).endswith("a rerun sends these 3")
    ray = RayLabelReport(enqueued=8, sent=3, failed=2, retryable=2, freed=1)
    assert said(lambda: _say_stopped(ray, 600)).endswith("a rerun sends these 3, and tries again the 2 failed ones that may pass (timeouts, rate limits, server errors)")
