"""The CLI's one console and its progress display: the only place graduate prints."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.table import Table
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console()
err_console = Console(stderr=True)


@contextmanager
def stage_progress() -> Iterator:
    """A ProgressFn (stage, done, total) drawn as one Rich bar per stage."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield report


@contextmanager
def item_progress(description: str, total: int) -> Iterator:
    """A callback(advance) for item loops, with rate and time remaining."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def count_table(title: str) -> Table:
    """The two-column "what / count" table that commands end with."""
    t = Table(title=title, title_justify="left")
    t.add_column("what")
    t.add_column("count", justify="right")
    return t


def fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_usd(value: float | None, estimated: bool = False) -> str:
    if value is None:
        return "–"
    text = f"${value:.4f}" if value >= 0.01 else f"${value:.2e}"
    return text + (" (est.)" if estimated else "")


def quiet_libraries() -> None:
    """Keep model libraries' own progress bars, load reports and advice off the terminal (ours
    show progress). Mostly environment variables, read when those libraries are imported, so
    every command gets it (``main`` calls this first) without importing them."""
    import logging
    import os
    import sys

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's quantiser logs advice on the root logger
    if "transformers" in sys.modules:  # imported already: the environment was read before we set it
        transformers = sys.modules["transformers"]
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
