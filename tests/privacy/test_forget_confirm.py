"""`graduate privacy forget --match` with a common word deleted the whole call log (the word is in
every request's prompt) with no preview. A deletion of more than one item, or of calls no deleted
item accounts for, is shown first and asked about; without a terminal it is refused unless --yes;
--dry-run shows it and deletes nothing. One item by its id goes at once, as before."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from graduate.pipeline.project import Project
from graduate.store.schema import examples, forgotten, teacher_calls
from teacher.live_teacher import cli_env

PROMPT_WORD = "toxic"  # in the teacher's prompt: every call's request holds it


def graduate(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=120, env=cli_env(), stdin=stdin)


def counts(project: Path) -> tuple[int, int, int]:
    proj = Project.load(project)
    with proj.engine.connect() as conn:
        out = tuple(conn.execute(select(func.count()).select_from(t)).scalar_one() for t in (examples, teacher_calls, forgotten))
    proj.engine.dispose()
    return out  # type: ignore[return-value]


def test_a_match_in_every_prompt_is_shown_and_refused_without_yes(trained_copy: Path) -> None:
    before = counts(trained_copy)
    plan = Project.load(trained_copy).forget_plan(match=PROMPT_WORD)
    assert plan.sweeping and plan.loose_calls > 300 and plan.calls == before[1]

    refused = graduate("privacy", "forget", str(trained_copy), "--match", PROMPT_WORD)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"--match '{PROMPT_WORD}' would delete {plan.items} items, {before[1]} teacher calls" in refused.stdout
    assert "hold 'toxic' outside any of these items" in refused.stdout and "please classify whether it is toxic" in refused.stdout
    assert "nothing deleted" in refused.stderr and "--yes" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert counts(trained_copy) == before

    dry = graduate("privacy", "forget", str(trained_copy), "--match", PROMPT_WORD, "--dry-run")
    assert dry.returncode == 0 and "nothing deleted (--dry-run)" in dry.stdout and counts(trained_copy) == before

    done = graduate("privacy", "forget", str(trained_copy), "--match", PROMPT_WORD, "--yes")
    assert done.returncode == 0, done.stderr
    after = counts(trained_copy)
    assert after[1] == 0 and after[2] == before[2] + 1


def test_the_question_on_a_terminal_deletes_only_on_yes(trained_copy: Path) -> None:
    before = counts(trained_copy)
    for answer, deleted in (("n\n", False), ("y\n", True)):
        leader, follower = pty.openpty()
        os.write(leader, answer.encode())
        result = graduate("privacy", "forget", str(trained_copy), "--match", PROMPT_WORD, stdin=follower)
        os.close(follower)
        os.close(leader)
        assert "would delete" in result.stdout
        assert (counts(trained_copy)[1] == 0) is deleted, result.stdout + result.stderr
        assert result.returncode == (0 if deleted else 1)
    assert counts(trained_copy)[0] <= before[0]


def test_one_item_by_id_or_one_match_goes_at_once(trained_copy: Path) -> None:
    before = counts(trained_copy)
    one = graduate("privacy", "forget", str(trained_copy), "--item", "00e3f344cc9fef4a")
    assert one.returncode == 0 and "would delete" not in one.stdout, one.stdout + one.stderr
    match = graduate("privacy", "forget", str(trained_copy), "--match", "Fred Phelps")  # one comment, and its calls
    assert match.returncode == 0 and "would delete" not in match.stdout, match.stdout + match.stderr
    assert counts(trained_copy)[0] == before[0] - 2
