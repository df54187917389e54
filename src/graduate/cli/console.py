"""The CLI's one console and its progress display: the only place graduate prints."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(emoji=False)  # ":100:" in "file.csv:100: ..." must stay a line number, not become an emoji
err_console = Console(stderr=True, emoji=False)


# Not on a terminal (nohup, a redirect, CI) Rich draws no bars: a line every this many seconds.
PLAIN_PROGRESS_EVERY_S = 5.0


class _PlainProgress:
    """Progress as plain lines on stderr, at most one per PLAIN_PROGRESS_EVERY_S per task, plus the
    first and the last: `labelling with gpt-4: 120/600 (20%), 1.3/s, about 6 min left`."""

    def __init__(self) -> None:
        import time

        self._clock = time.monotonic
        self._state: dict[str, tuple[float, float, int, int | None]] = {}  # started, last printed, done, total
        self._finished: set[str] = set()

    def update(self, name: str, done: int, total: int | None) -> None:
        now = self._clock()
        started, last, _, _ = self._state.get(name, (now, 0.0, 0, total))
        finished = total is not None and done >= total
        self._state[name] = (started, last, done, total)
        if name in self._finished or (last and now - last < PLAIN_PROGRESS_EVERY_S and not finished):
            return
        elapsed = now - started
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{name}: {done}" + (f"/{total} ({done / total:.0%})" if total else "")]
        if rate and elapsed >= 1:
            parts.append(f"{rate:.1f}/s")
            if total and not finished:
                left = (total - done) / rate
                parts.append(f"about {left / 60:.0f} min left" if left >= 90 else f"about {left:.0f} s left")
        if finished:
            self._finished.add(name)
            parts.append(f"done in {elapsed:.0f} s")
        err_console.print(escape(", ".join(parts)), highlight=False, soft_wrap=True)
        self._state[name] = (started, now, done, total)


@contextmanager
def stage_progress() -> Iterator:
    """A ProgressFn (stage, done, total) drawn as one Rich bar per stage (plain lines off a terminal)."""
    if not err_console.is_terminal:
        plain = _PlainProgress()
        yield plain.update
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold", markup=False),  # a description holds names: a model, a file
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
    """A callback(advance) for item loops, with rate and time remaining (plain lines off a terminal)."""
    if not err_console.is_terminal:
        plain = _PlainProgress()
        done = [0]
        plain.update(description, 0, total)

        def advance(n: int) -> None:
            done[0] += n
            plain.update(description, done[0], total)

        yield advance
        return
    with Progress(
        TextColumn("{task.description}", style="bold", markup=False),  # a description holds names: a model, a file
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def shown(text: str) -> str:
    """``text`` as markup that prints as written: Rich markup escaped, and characters a terminal
    would act on (ESC sequences, other controls, bidi overrides; Rich passes ESC through) written as
    ``\\x1b``-style escapes. For names read back from the store, e.g. a reviewer's ``human:NAME``
    stored before names were checked."""
    return escape("".join(c if c.isprintable() or c in " \u200c\u200d" else repr(c)[1:-1] for c in text))


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


MULTI_LABEL_ROWS = [
    ("micro_f1", "micro-F1"), ("micro_precision", "micro precision"), ("micro_recall", "micro recall"),
    ("macro_f1", "macro-F1"), ("exact_match", "exact set match"), ("hamming_loss", "Hamming loss"),
]


def metric_rows(metrics: list[str], labels: list[str], positive: str | None, *, multi_label: bool = False) -> list[tuple[str, str]]:
    """(key, row name) for a results table. Binary tasks: the positive label's precision, recall
    and F1, with FPR/TPR. Multi-class: macro means only (precision/recall/f1 hold the same
    figures), no FPR/TPR (they need one positive label). Multi-label: the set figures."""
    if multi_label:
        return list(MULTI_LABEL_ROWS)
    if len(labels) == 2:
        pos = escape(str(positive))
        names = {"precision": f"precision ({pos})", "recall": f"recall ({pos})", "f1": f"F1 ({pos})"}
        return [(m, names.get(m, m)) for m in metrics]
    macro = {"precision": "precision (macro)", "recall": "recall (macro)", "f1": "F1 (macro)", "roc_auc": "roc_auc (macro, one-vs-rest)", "pr_auc": "pr_auc (macro)"}
    out, seen = [], set()
    for m in metrics:
        if m in ("fpr", "tpr"):
            continue
        key = m.removeprefix("macro_")
        if key in seen:
            continue
        seen.add(key)
        out.append((m, macro.get(key, m)))
    return out


def step_notes(step: dict[str, Any]) -> list[str]:
    """What a training-set recipe step says beyond its counts (unescaped): the teacher's
    unparseable answers with what was wrong, a ``clean.balance.prior`` share not reached."""
    out = []
    if step.get("why"):
        out.append("e.g. " + "; ".join(step["why"][:3]) + ("; ..." if step.get("dropped", 0) > 3 else ""))
    if step.get("prior_not_reached"):
        have = step.get("before") or {}
        out.append(
            "clean.balance.prior not reached: "
            + "; ".join(
                f"{lab!r} carried by {got:.2f} of the weight, not {step['prior'][lab]}" + (f" ({have[lab]} of {step['kept']} training items carry it)" if lab in have else "")
                for lab, got in step["prior_not_reached"].items()
            )
        )
    return out


def teacher_caption(teacher: dict[str, Any], n: int) -> str | None:
    """What a results table says of the teacher's test-set answers it could not score, naming the
    first unparseable ones."""
    bad = teacher.get("unparseable_examples") or []
    eg = f"; e.g. {'; '.join(bad[:3])}" if bad else ""
    counts = f"{teacher.get('unparseable')} unparseable, {teacher.get('missing')} without an answer"
    if teacher.get("too_few_answers"):
        return escape(f"teacher: {teacher.get('answered')} answers of {n} items, too few to score it or the students' agreement with it (evaluation.min_teacher_answers; {counts}){eg}")
    if teacher.get("unparseable") or teacher.get("missing"):
        return escape(f"teacher scored on {teacher.get('answered')} answered items ({counts}){eg}")
    return None


def never_in_gold(test_set: str, label_counts: dict[str, int]) -> str | None:
    """The line naming the task labels no gold set of ``test_set`` holds (label sets): their recall
    and F1 are 0/0, which the figures hold as 0."""
    absent = [lab for lab, n in label_counts.items() if n == 0]
    if not absent:
        return None
    names = ", ".join(repr(lab) for lab in absent)
    return escape(
        f"{test_set}: no gold set holds {names}: recall and F1 of {'that label' if len(absent) == 1 else 'those labels'} are 0/0, "
        "counted as 0 in the macro figures above; a gate on them is judged not measured"
    )


def fmt_usd(value: float | None, estimated: bool = False) -> str:
    """A cost per 1,000 items (see graduate.evaluate.cost.format_usd_per_1k)."""
    from graduate.evaluate.cost import format_usd_per_1k

    return format_usd_per_1k(value, estimated)


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


def quiet_ray() -> None:
    """--ray commands: Ray's C++ notices and INFO logs stay off the terminal; ours say what happened."""
    import logging

    # RAY_BACKEND_LOG_LEVEL is left as the user has it: Ray's C++ core announces that variable on
    # stderr ("Set ray log level from environment variable ...", logged before the level applies),
    # and its default already keeps all but ERROR lines off the terminal, so a real error shows.
    # (Ray Data's false ERROR line about actor restarts is avoided where it starts: ray_predict.)
    logging.getLogger("ray").setLevel(logging.WARNING)
    # ray.init announces token authentication (on by default for a new local cluster) as a
    # warning on every run; it is no news to a graduate user and said nothing about the run.
    logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
