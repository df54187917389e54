"""Ctrl-C (SIGINT) during a long command: one line saying that finished work is stored, exit 130.
Typer turns a KeyboardInterrupt into a silent exit 130, so the line was never printed."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from servers import fake_openai_server
from teacher.live_teacher import as_at_a_terminal, cli_env, label_command, point_teacher, wait_for_requests


def test_ctrl_c_during_label_says_work_is_stored_and_exits_130(tiny_project: Path) -> None:
    with fake_openai_server(latency=30) as server:  # every answer takes 30 s: the command is mid-call
        point_teacher(tiny_project, server.base_url, concurrency=2, timeout_s=60, max_retries=0)
        client = subprocess.Popen(label_command(tiny_project, "--limit", "5"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), preexec_fn=as_at_a_terminal)
        try:
            wait_for_requests(server, client, 1, timeout_s=90)
            client.send_signal(signal.SIGINT)
            out, err = client.communicate(timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    assert client.returncode == 130, (client.returncode, out, err)
    assert "interrupted: finished work is stored; run the same command again to resume" in err, err
    assert "internal error" not in err and "Traceback" not in err, err
