"""On a terminal the progress bar shows the model's name as written, brackets and all (it was read
as Rich markup: "org/[/]tox[v2]" showed as "org/tox")."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from servers import fake_openai_server
from teacher.live_teacher import cli_env, point_teacher


def test_the_label_progress_bar_shows_a_model_name_with_brackets_as_written(tiny_project: Path, tmp_path: Path) -> None:
    items = tmp_path / "items.csv"
    items.write_text("id,comment_text\n1,a text nobody sent yet\n")
    with fake_openai_server() as server:
        point_teacher(tiny_project, server.base_url, model="org/[/]tox[v2]")
        result = subprocess.run(
            [sys.executable, "-m", "graduate", "label", str(tiny_project), "--input", str(items)],
            capture_output=True, text=True, timeout=120, env=cli_env(FORCE_COLOR="1"),  # a terminal to Rich: the bar is drawn
        )
    assert result.returncode == 0, result.stderr
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stderr)
    assert "labelling with org/[/]tox[v2]" in shown, shown[:500]

