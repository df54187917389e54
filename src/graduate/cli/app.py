"""The ``graduate`` command: one Typer app, one module per noun."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from graduate.cli import augment, imports, init, label, predict, run, spec, status
from graduate.cli import teacher as teacher_cli
from graduate.cli import curve as curve_cli
from graduate.cli import runs as runs_cli
from graduate.cli import students as students_cli
from graduate.cli import train as train_cli
from graduate.cli import monitor as monitor_cli
from graduate.cli import serve as serve_cli
from graduate.cli import errors as errors_cli
from graduate.cli import evaluate as evaluate_cli
from graduate.cli import report as report_cli
from graduate.cli import data as data_cli
from graduate.cli import privacy as privacy_cli
from graduate.cli import batch as batch_cli
from graduate.cli import active as active_cli
from graduate.cli.console import err_console, quiet_libraries
from graduate.errors import GraduateError

app = typer.Typer(
    name="graduate",
    help="Graduate from a closed LLM to an open model: distil a teacher into a student you own.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("init")(init.init)
app.command("run")(run.run)
app.command("label")(label.label)
app.command("predict")(predict.predict)
app.command("status")(status.status)
app.command("spec-help")(spec.spec_help)
app.command("check")(spec.check)
app.command("evaluate")(evaluate_cli.evaluate)
app.command("errors")(errors_cli.errors)
app.command("report")(report_cli.report)
app.command("serve")(serve_cli.serve)
app.command("proxy")(serve_cli.proxy)
app.command("serve-plan")(serve_cli.serve_plan)
app.command("promote")(serve_cli.promote)
app.command("monitor")(monitor_cli.monitor)
app.add_typer(imports.app, name="import")
app.add_typer(teacher_cli.app, name="teacher")
app.add_typer(data_cli.app, name="data")
app.add_typer(students_cli.app, name="students")
app.command("train")(train_cli.train)
app.command("curve")(curve_cli.curve)
app.command("augment")(augment.augment)
app.command("synth")(augment.synth)
app.command("select")(active_cli.select)
app.add_typer(runs_cli.app, name="runs")
app.add_typer(privacy_cli.app, name="privacy")
app.add_typer(batch_cli.app, name="batch")


def _interrupted() -> None:
    err_console.print("[yellow]interrupted[/]: finished work is stored; run the same command again to resume")
    sys.exit(130)


def main() -> None:
    quiet_libraries()  # e.g. `graduate run` training an encoder: our progress bars only
    try:
        app()
    except GraduateError as exc:
        # Escaped: a message naming an extra (`pip install 'graduate[serve]'`) is not Rich markup.
        for line in str(exc).splitlines() or [""]:
            err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as exc:
        # Typer turns Ctrl-C inside a command into a silent exit 130 (typer.core: `raise Exit(130)`).
        if exc.code == 130:
            _interrupted()
        raise
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback on request
        import os
        import traceback

        if os.environ.get("GRADUATE_DEBUG"):
            traceback.print_exc()
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {os.path.basename(where.filename)}:{where.lineno}" if where else ""
        message = " ".join(str(exc).split())[:300]
        err_console.print(
            f"[bold red]error:[/] internal error{escape(at)}: {type(exc).__name__}: {escape(message)}; finished work is stored and the "
            "step that failed is marked failed. Set GRADUATE_DEBUG=1 for the traceback, and please report it.",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(70)
