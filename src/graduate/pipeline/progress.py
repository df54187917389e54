"""Progress reporting: library code reports (stage, done, total), the CLI draws it."""

from __future__ import annotations

from typing import Callable

ProgressFn = Callable[[str, int, "int | None"], None]


def no_progress(stage: str, done: int, total: int | None) -> None:
    return None
