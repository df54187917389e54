"""graduate label PROJECT --input FILE: send unlabelled rows to the live teacher and store the answers."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from graduate.cli.console import console, err_console, item_progress, count_table
from graduate.cli.options import number
from graduate.errors import usd


def label(
    project: Path = typer.Argument(..., help="Project directory."),
    input: Path = typer.Option(..., "--input", "-i", help="CSV of items to label."),
    text_column: str | None = typer.Option(None, help="Column with the text (default: task.text_column)."),
    id_column: str | None = typer.Option(None, help="Column with a unique id (default: the row number)."),
    limit: int | None = typer.Option(None, min=1, help="Label at most this many rows."),
    ray: str | None = typer.Option(
        None,
        "--ray",
        # \\[: Typer renders help as Rich markup, where [ray] would be a style tag and vanish.
        help="Send from worker actors on a Ray cluster: 'local' (start one here), 'auto', or its address; a remote cluster needs a "
        "PostgreSQL store. Needs pip install 'graduate\\[ray]'.",
    ),
    workers: int | None = typer.Option(None, min=1, help="--ray: worker actors; each gets its share of the rate limits and concurrency; default 2 (1 if teacher.concurrency is 1)."),
    lease_s: float | None = typer.Option(
        None, parser=number("--lease-s", least=1), help="--ray: a claimed call's lease in seconds; a dead worker's calls are sent again after it lapses; default 60."
    ),
) -> None:
    """Label rows with the spec's teacher: cached (a re-run sends nothing), rate-limited, budget-capped."""
    from graduate.data.csv_source import read_items, require_items
    from graduate.data.examples import NOT_LABELLED_NOTE, examples_for_texts
    from graduate.data.teacher_labels import teacher_labels
    from graduate.errors import SpecError
    from graduate.pipeline.project import Project

    if ray is None:
        for flag, value in (("--workers", workers), ("--lease-s", lease_s)):
            if value is not None:  # not silently ignored
                raise SpecError("only with --ray (worker actors on a Ray cluster); add --ray local, or leave it out", field=flag)
    proj = Project.load(project)
    if ray is not None:
        from graduate.pipeline.ray_label import worker_count

        workers = worker_count(proj.spec.teacher, workers)  # refused before anything is read or stored
    items, report = read_items(input, text_column=text_column or proj.spec.task.text_column, id_column=id_column)
    require_items(items, report, input)
    for problem in report.skipped[:10]:
        err_console.print(escape(f"skipped {problem}"), highlight=False)
    if limit is not None:
        items = items[:limit]
    texts = proj.teacher_texts([it.text for it in items])  # redacted when privacy.redact_teacher_input is on
    # Keyed by what is sent: the file's own texts, never an id that an earlier file used.
    examples = examples_for_texts(proj.engine, f"label:{input.stem}", texts)
    # A text whose only item its data file no longer holds is not labelled: it was taken out.
    gone = sum(ex.absent for ex in examples)
    texts = [t for t, ex in zip(texts, examples) if not ex.absent]
    examples = [ex for ex in examples if not ex.absent]
    if ray is not None:
        stats = _label_ray(proj, texts, ray, workers, lease_s or 60.0)
    else:
        from graduate.teacher.labeling import LabelStats

        stats = LabelStats()
        try:
            with item_progress(f"labelling with {proj.spec.teacher.model}", len(texts)) as advance:
                _, stats = proj.label(texts, progress=advance, stats=stats)
        except KeyboardInterrupt:  # what was stored and what a rerun sends; main() then says "interrupted" and exits 130
            _say_stopped_plain(stats)
            raise
    parsed = teacher_labels(proj.engine, proj.spec.task, proj.spec.teacher, examples)
    unparseable = sum(1 for p in parsed.values() if p.call is not None and p.label is None)
    counts: dict[str, int] = {}
    for p in parsed.values():
        if p.label is not None:
            counts[p.label] = counts.get(p.label, 0) + 1

    t = count_table(escape(f"{input.name}: {len(items)} rows ({len(report.skipped)} skipped)"))
    for name, value in [
        ("distinct requests", stats.distinct),
        ("answered from the call log (not sent)", stats.cached),
        ("sent and answered", stats.sent),
        ("failed (after retries, refused, or cut off)", stats.failed),
        ("not sent (budget)", stats.budget_unsent),
        ("not sent (waiting in an open batch: graduate batch collect)", stats.held),
        ("not sent (first answers all cut off or without text)", stats.stopped_unsent),
        ("not sent (cut off at these settings before)", stats.known_cut),
        ("unparseable answers", unparseable),
        ("not labelled (item no longer in its data file)", gone),
    ]:
        t.add_row(name, str(value))
    for lab, n in sorted(counts.items()):
        t.add_row(escape(f"label {lab}"), str(n))
    t.add_row("cost of this run", f"${stats.cost_usd:,.4f}" if stats.cost_usd >= 0.0001 or not stats.cost_usd else "< $0.0001")
    console.print(t)
    if gone:
        err_console.print(escape(f"{gone} {NOT_LABELLED_NOTE}"), highlight=False)
    say_unsent_and_failed(stats, proj.spec.teacher.budget_usd)


def say_unsent_and_failed(stats, budget_usd: float) -> None:
    """What a teacher run (``LabelStats``) failed or left unsent, and the fix, on stderr; exits 3
    when the budget stopped it, 1 when calls failed or were not sent for a reason of their own
    (graduate label, select --send: one account, not a copy each)."""
    for e in stats.errors[:5]:
        err_console.print(f"[red]failed:[/] {escape(str(e))}", highlight=False)
    if stats.cut_stopped:
        err_console.print(
            f"[bold red]error:[/] the first answers were all cut off or held no text, so {stats.stopped_unsent} items were not sent "
            "(each would have been paid for and failed alike); fix what the messages above name, then run again"
        )
    if stats.known_cut_advice:  # before the budget's exit: both may hold
        err_console.print(f"[bold red]error:[/] {escape(stats.known_cut_advice)}", highlight=False)
    if stats.budget_stopped:
        err_console.print(
            f"[bold red]error:[/] budget of {usd(budget_usd)} reached; {stats.budget_unsent} items not sent. "
            "Raise teacher.budget_usd in graduate.yaml and run again (answered items are kept)."
        )
        raise typer.Exit(3)
    if stats.failed or stats.known_cut or stats.cut_stopped:  # stopped: its failures may lie with a worker that died
        retryable = stats.retryable
        if retryable:
            err_console.print(
                f"[bold red]error:[/] {retryable} calls failed after every retry (timeouts, rate limits, server errors); "
                "run the same command again to retry them (answered items are kept)"
            )
        if stats.failed - retryable:
            err_console.print(
                f"[bold red]error:[/] {stats.failed - retryable} calls were refused or cut off as sent, and a re-run would fail alike: "
                "fix the field of graduate.yaml that the messages above name, then run again (answered items are kept)"
            )
        raise typer.Exit(1)


def _label_ray(proj, texts: list[str], address: str, workers: int | None, lease_s: float):
    """graduate label --ray, its figures as the plain path's (``LabelStats``)."""
    from graduate.cli.console import quiet_ray, stage_progress
    from graduate.pipeline.ray_label import LabelInterrupted, label_ray
    from graduate.teacher.labeling import LabelStats

    quiet_ray()
    try:
        with stage_progress() as progress:
            r = label_ray(proj, texts, address=address, workers=workers, lease_s=lease_s, progress=progress)
    except LabelInterrupted as stop:  # what was stored and what a rerun sends; main() then says "interrupted" and exits 130
        _say_stopped(stop.report, lease_s)
        raise
    _say_died(r)
    return LabelStats(
        distinct=r.distinct, cached=r.cached, sent=r.sent, failed=r.failed, not_sent=r.not_sent + r.held, held=r.held, cost_usd=r.cost_usd,
        errors=r.errors, budget_stopped=r.budget_stopped, retryable=r.retryable, cut_stopped=r.cut_stopped,
        stopped_unsent=r.stopped_unsent, known_cut=r.known_cut, known_cut_advice=r.known_cut_advice,
    )


# A worker claims a call before sending it, and the store does not record whether it went out.
_CLAIMED = "a worker claims a call before sending it: some may have been sent, their answers not stored"


def _say_died(r) -> None:
    if r.restarts:
        err_console.print(f"{r.restarts} Ray workers died and were replaced; {r.late} answers arrived after another worker's (paid twice)")
    if r.lost_in_flight:
        # Their answers, and what they cost, died with the worker: no figure is invented for them.
        err_console.print(
            f"{r.lost_in_flight} calls that the workers that died had claimed were given back to be sent again ({_CLAIMED}): the teacher may have "
            "charged for those first answers too, so that cost is not known and not in the cost of this run"
        )


def _retried(retryable: int) -> str:
    """The failed calls a rerun tries again too (timeouts, rate limits, server errors)."""
    return f", and tries again the {retryable} failed ones that may pass (timeouts, rate limits, server errors)" if retryable else ""


def _say_stopped_plain(stats) -> None:
    """Ctrl-C without --ray: what the run stored, and what a rerun sends (the calls left pending are reused)."""
    if not stats.to_send:  # stopped before sending began: nothing to count
        return
    unsent = max(0, stats.to_send - stats.sent - stats.failed - stats.in_flight)
    err_console.print(
        escape(
            f"stopped: of {stats.to_send} calls, {stats.sent} were sent and answered and {stats.failed} failed (stored), costing {usd(stats.cost_usd)}; "
            f"{stats.in_flight} were in flight, their answers not stored (the teacher may have charged for them), and {unsent} were not sent: "
            f"a rerun sends these {stats.in_flight + unsent}{_retried(stats.retryable)}"
        ),
        highlight=False,
    )


def _say_stopped(r, lease_s: float) -> None:
    """Ctrl-C: what the run stored, and the calls it gave back (or could not yet) for a rerun."""
    _say_died(r)
    unclaimed = max(0, r.enqueued - r.sent - r.failed - r.freed - r.still_held)
    line = (
        f"stopped: of {r.enqueued} calls, {r.sent} were sent and answered and {r.failed} failed (stored); {r.freed} that the workers had claimed were given back "
        f"({_CLAIMED}) and {unclaimed} were not yet claimed: a rerun sends these {r.freed + unclaimed}{_retried(r.retryable)}"
    )
    if r.still_held:
        line += f"; {r.still_held} stay claimed by workers that had not stopped 10 s later: a rerun sends them once those leases lapse (--lease-s {lease_s:g})"
    err_console.print(escape(line), highlight=False)
