"""graduate batch submit|status|collect|cancel: the teacher's calls through the OpenAI Batch API."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from rich.table import Table

from graduate.cli.console import console, count_table, err_console, stage_progress
from graduate.errors import usd

app = typer.Typer(
    help="Label through the OpenAI Batch API (half price, answers within 24 h): submit, status, collect, cancel. "
    "Nothing answered is sent again, nothing is paid twice; after a crash, run the same command again.",
    no_args_is_help=True,
)


def _usd(value: float | None, estimated: bool = False) -> str:
    if value is None:
        return "–"
    text = f"${value:,.4f}" if value >= 0.0001 or value == 0 else "< $0.0001"
    return f"~{text}" if estimated else text


def _texts(proj, input: Path | None, text_column: str | None, id_column: str | None, limit: int | None) -> list[str]:
    from graduate.data.csv_source import read_items, require_items
    from graduate.data.examples import NOT_LABELLED_NOTE, examples_for_texts, selection_examples
    from graduate.errors import NotReadyError

    if input is not None:
        items, report = read_items(input, text_column=text_column or proj.spec.task.text_column, id_column=id_column)
        require_items(items, report, input)
        for problem in report.skipped[:10]:
            err_console.print(escape(f"skipped {problem}"), highlight=False)
        items = items[:limit] if limit is not None else items
        texts = proj.teacher_texts([it.text for it in items])  # redacted when privacy.redact_teacher_input is on
        held = examples_for_texts(proj.engine, f"label:{input.stem}", texts)  # the same items `graduate label` would hold
        gone = sum(ex.absent for ex in held)
        if gone:  # as `graduate label`: an item taken out of its data file is not labelled
            err_console.print(escape(f"{gone} {NOT_LABELLED_NOTE}"), highlight=False)
        return [t for t, ex in zip(texts, held) if not ex.absent]
    proj.load_data()
    texts = [ex.text for ex in selection_examples(proj.engine, proj.spec.train)]
    if not texts:
        raise NotReadyError(f"no items to send: the training pool (train: in {proj.root / 'graduate.yaml'}) is empty; pass --input FILE.csv")
    return texts[:limit] if limit is not None else texts


@app.command("submit")
def submit(
    project: Path = typer.Argument(..., help="Project directory."),
    input: Path | None = typer.Option(None, "--input", "-i", help="CSV of items to label (default: the spec's training pool)."),
    text_column: str | None = typer.Option(None, help="Column with the text (default: task.text_column)."),
    id_column: str | None = typer.Option(None, help="Column with a unique id (default: the row number)."),
    limit: int | None = typer.Option(None, min=1, help="Send at most this many items."),
) -> None:
    """Plan, write, upload and create batches for the items the call log has no answer for (also
    resumes batches an interrupted submit left unsent)."""
    from graduate.pipeline import batch
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    texts = _texts(proj, input, text_column, id_column, limit)
    with stage_progress() as progress:
        report = batch.submit(proj, texts, progress=progress)
    t = count_table(f"batch submit: {report.items} items")
    for name, value in [
        ("distinct requests", report.distinct),
        ("answered in the call log (not sent)", report.answered),
        ("held by an open batch (not sent twice)", report.held),
        ("planned into new batches", report.planned),
        ("not sent (budget)", report.not_sent_budget),
        ("not sent (cut off at these settings before)", report.known_cut),
        ("not sent (request over teacher.batch.max_bytes_per_file)", report.too_large),
    ]:
        t.add_row(name, str(value))
    t.add_row("reserved at batch prices (estimate)", _usd(report.reserved_usd, estimated=True))
    for b in report.sent:
        t.add_row(escape(f"batch {b.uid} -> {b.remote_id}"), f"{b.requests} lines, {b.remote_status}")
    console.print(t)
    if report.sent:
        console.print(escape(f"Check with `graduate batch status {project}`; collect the answers with `graduate batch collect {project}` (--wait polls)."))
    if report.known_cut_advice:
        err_console.print(f"[bold red]error:[/] {escape(report.known_cut_advice)}", highlight=False)
    if report.budget_stopped:
        err_console.print(
            f"[bold red]error:[/] budget of {usd(proj.spec.teacher.budget_usd)} reached; {report.not_sent_budget} items not sent. "
            "Raise teacher.budget_usd in graduate.yaml and submit again (planned batches are kept)."
        )
        raise typer.Exit(3)
    if report.known_cut:
        raise typer.Exit(1)


def _status_table(title: str, views) -> None:
    t = Table(title=title, title_justify="left")
    t.add_column("batch (ours, provider's)")
    t.add_column("state")
    t.add_column("lines")
    t.add_column("answered / failed")
    t.add_column("cost")
    for v in views:
        b = v.row
        counts = b.counts or (v.remote.request_counts if v.remote else {}) or {}
        done = f"{counts.get('ok', counts.get('completed', 0))} / {counts.get('error', counts.get('failed', 0))}"
        state = b.state if b.state != "submitted" else (b.remote_status or "submitted")
        if b.state == "collected":
            state = f"collected ({b.remote_status})"
        cost = _usd(b.cost_usd) if b.cost_usd is not None else _usd(b.reserved_usd, estimated=True)
        t.add_row(escape(f"{b.uid} {b.remote_id or ''}".strip()), escape(state), str(b.requests), done, cost)
    console.print(t)


@app.command("status")
def status(project: Path = typer.Argument(..., help="Project directory.")) -> None:
    """Every batch of the project, the open ones as the provider reports them now."""
    from graduate.pipeline import batch
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    views = batch.status(proj)
    if not views:
        console.print(escape(f"no batches yet: `graduate batch submit {project}` sends the first"))
        return
    _status_table(escape(f"batches of {proj.spec.task.name}"), views)
    for v in views:
        if v.row.error:
            err_console.print(escape(f"batch {v.row.uid}: {v.row.error}"), highlight=False)


@app.command("collect")
def collect(
    project: Path = typer.Argument(..., help="Project directory."),
    wait: bool = typer.Option(False, "--wait", help="Poll (teacher.batch.poll_s) until no batch is running."),
) -> None:
    """Store the answers of every batch that has ended (output and error files, joined on
    custom_id); expired, cancelled or missing lines go back to unsent for the next submit."""
    from graduate.pipeline import batch
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    with stage_progress() as progress:
        done, running = batch.collect(proj, wait=wait, progress=progress)
    if not done and not running:
        console.print(escape(f"nothing to collect: no open batch (`graduate batch status {project}`)"))
        return
    failed_lines = 0
    for c in done:
        t = count_table(escape(f"batch {c.uid} ({c.remote_status})"))
        for name, key in [("answered", "ok"), ("failed (sent again by the next submit)", "error"), ("cut off at teacher.max_tokens (paid, no answer)", "cut"),
                          ("unsent (sent again by the next submit)", "unsent"),
                          ("lines matching no pending line (ignored)", "unmatched"), ("malformed lines (ignored)", "malformed")]:
            t.add_row(name, str(c.counts.get(key, 0)))
        t.add_row("cost at batch prices", _usd(c.cost_usd))
        console.print(t)
        for p in c.problems:
            err_console.print(escape(p), highlight=False)
        failed_lines += c.counts.get("error", 0) + c.counts.get("cut", 0)
        if c.error:
            err_console.print(f"[bold red]batch {escape(c.uid)} {escape(c.remote_status)}:[/] {escape(c.error)}", highlight=False, soft_wrap=True)
    if running:
        console.print(escape(f"{len(running)} batches still running; run `graduate batch collect {project}` again later, or with --wait"))
    cut = sum(c.counts.get("cut", 0) for c in done)
    if cut:
        err_console.print(
            f"[yellow]{cut} answers were cut off at teacher.max_tokens[/] (finish_reason length): raise teacher.max_tokens in graduate.yaml "
            f"before `graduate batch submit {escape(str(project))}` (a new limit is a new request)",
            highlight=False,
        )
    resend = sum(c.counts.get("error", 0) + c.counts.get("unsent", 0) for c in done)
    if resend:
        console.print(escape(f"{resend} lines have no answer yet: `graduate batch submit {project}` sends them again"))
    failed_batches = [c for c in done if c.remote_status == "failed"]
    if failed_batches:
        hint = "lower teacher.batch.max_requests_per_file or wait for running batches" if any("token_limit" in (c.error or "") for c in failed_batches) else "fix what it names"
        err_console.print(escape(f"error: {len(failed_batches)} batches failed at the provider; {hint}, then `graduate batch submit {project}`"))
        raise typer.Exit(1)
    if failed_lines:
        raise typer.Exit(1)


@app.command("cancel")
def cancel(
    project: Path = typer.Argument(..., help="Project directory."),
    batch_id: str | None = typer.Option(None, "--batch", help="Our batch uid or the provider's batch id (graduate batch status lists both)."),
    all_open: bool = typer.Option(False, "--all", help="Cancel every open batch."),
) -> None:
    """Ask the provider to stop a batch; `graduate batch collect` then keeps what it answered
    (paid) and returns the rest to unsent."""
    from graduate.errors import BatchError
    from graduate.pipeline import batch
    from graduate.pipeline.project import Project

    if (batch_id is None) == (not all_open):
        raise BatchError("name one batch with --batch ID, or cancel every open batch with --all")
    proj = Project.load(project)
    views = batch.cancel(proj, batch_id)
    if not views:
        console.print("nothing to cancel: no open batch")
        return
    _status_table("cancelled", views)
    console.print(escape(f"`graduate batch collect {project}` keeps their answered lines once the provider has stopped them."))
