"""graduate teacher ...: audit teacher configurations against gold; the local teacher's models and server."""

from __future__ import annotations

import contextlib

import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console, err_console
from graduate.cli.options import number

app = typer.Typer(help="The teacher: audit configurations against gold; the local teacher's packaged GGUF models and llama.cpp server.", no_args_is_help=True)


@contextmanager
def _bytes_progress(description: str) -> Iterator:
    with Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=err_console, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield report


@app.command("models")
def models() -> None:
    """The packaged models: what they are, whether their parts are installed, where they are joined."""
    from graduate.errors import LocalTeacherError
    from graduate.models.gguf import MODELS, cache_dir, part_files

    t = Table(title=f"packaged models (joined into {cache_dir() / 'models'})", title_justify="left")
    for col in ["name", "model", "size", "parts installed", "joined", "install"]:
        t.add_column(col)
    for m in MODELS.values():
        try:
            part_files(m)
            installed = "yes"
        except LocalTeacherError:
            installed = "no"
        joined = (cache_dir() / "models" / m.filename).exists()
        t.add_row(m.name, m.description, f"{m.size / 1e9:.2f} GB", installed, "yes" if joined else "no", escape(m.pip_install()))
    console.print(t)
    console.print("Any other GGUF file works too: teacher.model: /path/to/model.gguf")


@app.command("serve-local")
def serve_local(
    model: str = typer.Option("qwen2.5-coder-1.5b", "--model", "-m", help="A packaged model (graduate teacher models) or a path to a GGUF file."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port on 127.0.0.1 (default: a free one)."),
    n_ctx: int = typer.Option(2048, min=256, help="Context size in tokens (prompt + answer)."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads (default: every core)."),
    logprobs: bool = typer.Option(False, help="Keep every token's logits so that requests may ask for logprobs (slower, more memory)."),
    startup_timeout: float = typer.Option(300.0, parser=number("--startup-timeout", least=1), help="Seconds to wait for the model to load."),
    log: Path | None = typer.Option(None, help="Write the server's log here (default: in the cache directory)."),
) -> None:
    """Start llama.cpp's OpenAI-compatible server on 127.0.0.1 with a GGUF model; print its base URL; run until Ctrl-C or SIGTERM."""
    from graduate.models.gguf import resolve_model
    from graduate.teacher.local_server import LocalServer, require_llama_cpp

    require_llama_cpp()
    with _bytes_progress(f"preparing {model}") as report:
        path = resolve_model(model, progress=report)
    server = LocalServer(
        path, alias=model, port=port, n_ctx=n_ctx, threads=threads, logits_all=logprobs, startup_timeout_s=startup_timeout, log_path=log
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with err_console.status(f"starting llama.cpp server with {path.name} ..."):
            started = time.perf_counter()
            server.start()
        console.print(f"[bold green]serving[/] {escape(str(model))} at [bold]{escape(server.base_url)}[/] " + escape(f"(model name {model!r}, pid {server.pid}, ready in {time.perf_counter() - started:.1f} s)"), highlight=False)
        console.print(
            escape(f"  in graduate.yaml:  teacher: {{kind: openai, base_url: {server.base_url}, model: {model}, ...}}"), highlight=False, soft_wrap=True
        )
        console.print(escape(f"  log: {server.log_path}   stop: Ctrl-C"), highlight=False)
        while not stop.wait(0.5):
            if server.failure:
                err_console.print(f"[bold red]error:[/] {escape(str(server.failure))}", highlight=False, soft_wrap=True)
                raise typer.Exit(1)
    finally:
        server.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    console.print("stopped")


@app.command("audit")
def audit(
    project: Path = typer.Argument(..., help="Project directory (holds graduate.yaml)."),
    live: bool = typer.Option(False, "--live", help="Ask each configuration's teacher for the answers the call log lacks (cached, rate-limited, budget-capped)."),
) -> None:
    """Compare teacher configurations (audit.configs) and votes across them against gold; name the one `graduate label` should use."""
    from graduate.pipeline.project import Project
    from graduate.experiments.audit import run_audit, save_audit_files

    from graduate.cli.console import stage_progress

    proj = Project.load(project)
    with stage_progress() as progress:
        proj.import_logs(progress)  # idempotent: files already imported are recognised and skipped
        proj.load_data(progress)
        with proj.exclusive("graduate teacher audit --live") if live else contextlib.nullcontext():  # one spender at a time: the budget is read once
            result = run_audit(proj.engine, proj.spec, live=live, progress=progress)
    path = save_audit_files(proj.engine, proj.workdir, result)
    for line in result.get("warnings", []):
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)
    print_audit(result)
    console.print(escape(f"audit {result['audit_id'][:8]} stored; written to {path}"), highlight=False)
    if live:
        _live_outcome(result, proj.spec.teacher.budget_usd)


def _live_outcome(result: dict, budget: float) -> None:  # type: ignore[type-arg]
    """What --live sent per configuration; like graduate label, exit 3 at the budget, 1 on failed calls."""
    from graduate.errors import usd

    lives = [(c["name"], c["live"]) for c in result["configs"] if c.get("live")]
    for name, st in lives:
        console.print(
            escape(f"--live {name}: sent {st['sent']}, from the call log {st['cached']}, failed {st['failed']}, not sent {st['not_sent']}, "
                   f"cost ${st['cost_usd']:,.4f}"),
            highlight=False,
        )
        for e in st.get("errors", [])[:3]:
            err_console.print(f"[red]failed:[/] {escape(str(e))}", highlight=False)
        if st.get("known_cut_advice"):
            err_console.print(f"[bold red]error:[/] --live {escape(name)}: {escape(st['known_cut_advice'])}", highlight=False)
    stopped = [name for name, st in lives if st.get("budget_stopped")]
    if stopped:
        left = sum(st["not_sent"] - st.get("held", 0) - st.get("known_cut", 0) - st.get("stopped_unsent", 0) for _, st in lives)
        err_console.print(
            f"[bold red]error:[/] budget of {usd(budget)} reached during --live; {left} answers not asked for. "
            "Raise teacher.budget_usd in graduate.yaml and run again (answered items are kept).",
            highlight=False,
        )
        raise typer.Exit(3)
    failed = sum(st["failed"] for _, st in lives)
    if failed or any(st.get("known_cut") for _, st in lives):
        retryable = sum(st["retryable"] for _, st in lives)
        if retryable:
            err_console.print(
                f"[bold red]error:[/] {retryable} calls failed during --live after every retry; run the same command again to retry them (answered items are kept)"
            )
        if failed - retryable:
            err_console.print(
                f"[bold red]error:[/] {failed - retryable} calls during --live were refused or cut off as sent, and a re-run would fail alike: "
                "fix the field of graduate.yaml that the messages above name, then run again (answered items are kept)"
            )
        raise typer.Exit(1)


def _pct(x: object) -> str:
    return "–" if x is None else f"{100 * float(x):.1f}%"  # type: ignore[arg-type]


def _print_label_set_audit(result: dict, title: Any) -> None:  # type: ignore[type-arg]
    """Multi-label audit tables: the set figures per configuration, then F1 per label."""
    from graduate.cli.console import fmt

    labels = result["labels"]
    for s in result["sets"]:
        name = s["name"]
        counts = ", ".join(f"{k} {v}" for k, v in s["label_counts"].items())
        t = Table(title=f"teacher audit on {escape(name)} ({s['items']} gold items; items per label: {escape(counts)}); * recommended, ! flagged", title_justify="left")
        for col in ["configuration", "micro-F1", "micro precision", "micro recall", "macro-F1", "exact set", "Hamming loss", "answered"]:
            t.add_column(col, justify="left" if col == "configuration" else "right")
        for c in result["configs"]:
            m = c["sets"][name]
            t.add_row(
                title(c), fmt(m.get("micro_f1")), fmt(m.get("micro_precision")), fmt(m.get("micro_recall")), fmt(m.get("macro_f1")),
                fmt(m.get("exact_match")), fmt(m.get("hamming_loss")), f"{m['answered']}/{m['items']}",
            )
        console.print(t)
        t = Table(title=f"F1 per label on {escape(name)} (! weak: far below the recommended configuration)", title_justify="left")
        t.add_column("configuration")
        for lab in labels:
            t.add_column(escape(lab), justify="right")
        for c in result["configs"]:
            per = c["sets"][name].get("per_label") or {}
            weak = {f.get("label") for f in c.get("flags", []) if f["flag"] == "weak_label" and f["set"] == name}
            t.add_row(title(c), *[(f"[bold red]{fmt((per.get(lab) or {}).get('f1'))} ![/]" if lab in weak else fmt((per.get(lab) or {}).get("f1"))) for lab in labels])
        console.print(t)


def print_audit(result: dict) -> None:  # type: ignore[type-arg]
    from graduate.cli.console import fmt, fmt_usd

    rec = result.get("recommended") or {}

    def title(c: dict) -> str:  # type: ignore[type-arg]
        label = c["name"] + (f" (n={c['n']})" if c.get("n") and c["n"] > 1 else "") + (" [ensemble]" if c["kind"] == "ensemble" else "")
        return f"[bold green]{escape(label)} *[/]" if c["name"] == rec.get("name") else escape(label)

    if result.get("multi_label"):
        _print_label_set_audit(result, title)
    for s in [] if result.get("multi_label") else result["sets"]:
        name = s["name"]
        counts = ", ".join(f"{k} {v}" for k, v in s["label_counts"].items())
        binary = len(s["label_counts"]) == 2 if "labels" not in result else len(result["labels"]) == 2
        t = Table(title=f"teacher audit on {escape(name)} ({s['items']} gold items: {escape(counts)}); * recommended, ! flagged", title_justify="left")
        # FPR/TPR need one positive label: binary tasks only; multi-class precision/recall/F1 are macro means.
        cols = ["configuration", "accuracy", "precision", "recall", "F1", "FPR", "TPR", "answered"] if binary else [
            "configuration", "accuracy", "precision (macro)", "recall (macro)", "F1 (macro)", "answered"]
        for col in cols:
            t.add_column(col, justify="left" if col == "configuration" else "right")
        for c in result["configs"]:
            m = c["sets"][name]
            fpr = fmt(m.get("fpr"))
            if any(f["flag"] == "high_fpr" and f["set"] == name for f in c.get("flags", [])):
                fpr = f"[bold red]{fpr} ![/]"
            rates = [fpr, fmt(m.get("tpr"))] if binary else []
            t.add_row(title(c), fmt(m.get("accuracy")), fmt(m.get("precision")), fmt(m.get("recall")), fmt(m.get("f1")), *rates, f"{m['answered']}/{m['items']}")
        console.print(t)
    t = Table(title="calls: parse failures, cost, latency, repeated requests that got different answers", title_justify="left")
    for col in ["configuration", "set", "unparseable", "failed calls", "cost / 1k items", "p50 / p95 ms", "repeats differing"]:
        t.add_column(col, justify="left" if col in ("configuration", "set") else "right")
    for c in result["configs"]:
        for name, m in c["sets"].items():
            lat = "–" if m.get("latency_p50_ms") is None else f"{m['latency_p50_ms']:.0f} / {m['latency_p95_ms']:.0f}"
            rep = "–" if not m.get("repeated_items") else f"{m['disagreeing_items']}/{m['repeated_items']} ({_pct(m['disagreement_rate'])})"
            t.add_row(
                title(c),
                escape(name),
                "–" if c["kind"] == "ensemble" else f"{m.get('parse_failures', 0)} ({_pct(m.get('parse_failure_rate'))})",
                "–" if c["kind"] == "ensemble" else str(m.get("failed_calls", 0)),
                fmt_usd(m.get("cost_per_1k_usd"), bool(m.get("cost_estimated"))),
                lat,
                rep,
            )
    console.print(t)
    for c in result["configs"]:
        for f in c.get("flags", []):
            console.print(f"[yellow]![/] {escape(c['name'])}: {escape(f['message'])}", highlight=False)
    if rec:
        ceiling = ", ".join(f"{k} {fmt(v)}" for k, v in rec["ceiling"].items())
        console.print(f"\n[bold]recommended for graduate label:[/] {escape(rec['name'])} " + escape(f"({rec['labeller']}{', n=' + str(rec['n']) if rec['n'] > 1 else ''}): {rec['reason']}"), highlight=False)
        console.print(
            f"[bold]its agreement with gold[/]: {escape(ceiling)}. A student that learns its labels usually lands near this, "
            "and can exceed it (it averages out the teacher's random mistakes); it is a reference, not a ceiling.",
            highlight=False,
        )
        if not rec["current_is_recommended"]:
            console.print(f"[yellow]graduate.yaml's teacher is {escape(str(rec['current_teacher']))}[/]: set teacher: to the recommended configuration", highlight=False)
        if rec.get("better_ensemble"):
            e = rec["better_ensemble"]
            console.print(
                f"the ensemble {escape(e['name'])} ({escape(e['method'] + ' of ' + ', '.join(e['members']))}) scores {fmt(e.get('mean_score', e.get('mean_accuracy')))}: "
                "use it for the training set with train.labeller: {kind: ensemble, ...}",
                highlight=False,
            )
    else:
        hint = "" if result.get("live") else "; run with --live"
        err_console.print(f"[bold red]no configuration answered enough of every audit set to be recommended[/] (audit.min_coverage){hint}", highlight=False)
    for n in result.get("notes", []):
        console.print(escape(f"note: {n}"), highlight=False)
