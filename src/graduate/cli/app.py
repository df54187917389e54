"""The ``graduate`` command: one Typer app, one module per noun."""

from __future__ import annotations

import sys

import typer

from graduate.cli import imports, init, label, predict, run, spec, status
from graduate.cli.console import err_console
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
app.add_typer(imports.app, name="import")


def main() -> None:
    try:
        app()
    except GraduateError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: finished work is stored; run the same command again to resume")
        sys.exit(130)
