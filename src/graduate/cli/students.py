"""graduate students list|show: the student kinds, smallest first, and their params."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console

app = typer.Typer(help="Student kinds (the ladder, smallest first) and their params.", no_args_is_help=True)


def _summary(cls: type) -> str:
    """The first sentence of the kind's module docstring."""
    import sys

    doc = (sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n")[0]
    text = " ".join(doc.split())
    return text.split(". ")[0].rstrip(".") + "."


def _params(cls: type) -> dict:
    # Filled in by the project from graduate.yaml, not set by hand.
    return {k: v for k, v in cls.DEFAULTS.items() if k != "member_defaults"}


@app.command("list")
def list_kinds() -> None:
    """Every kind in the order `graduate train --ladder` climbs them, with its params."""
    from graduate.students.registry import LADDER, WRAPPERS, student_class

    table = Table(title="student kinds (smallest first)", title_justify="left")
    for col in ("kind", "what", "params"):
        table.add_column(col, overflow="fold")
    for kind in LADDER:
        cls = student_class(kind)
        table.add_row(kind, _summary(cls), ", ".join(_params(cls)))
    console.print(table)
    themselves = [k for k in LADDER if student_class(k).takes_multi_label]
    per_label = [k for k in LADDER if k not in themselves]
    wrapper = ", ".join(sorted(WRAPPERS))
    console.print(
        f"multi-label tasks: {', '.join(themselves)} take label sets themselves; {', '.join(per_label)} "
        f"{'is' if len(per_label) == 1 else 'are'} trained once per label ({wrapper})",
        highlight=False,
    )
    console.print("defaults of one kind: graduate students show KIND; set them under students: [{kind: KIND, params: {...}}]")


@app.command("show")
def show_kind(kind: str = typer.Argument(..., help="A student kind, e.g. encoder.")) -> None:
    """One kind: what it is and each param's type, default and meaning."""
    from graduate.students.params import describe
    from graduate.students.registry import student_class

    cls = student_class(kind)  # an unknown kind is a StudentError naming the known ones
    console.print(f"[bold]{escape(kind)}[/bold]: {escape(_summary(cls))}", highlight=False)
    if cls.needs_accelerator:
        console.print("needs a GPU to train in reasonable time (left out of `graduate train --ladder` on CPU unless named)", highlight=False)
    table = Table(title=f"params of {escape(kind)} (set under students: [{{kind: {escape(kind)}, params: {{...}}}}])", title_justify="left")
    for col, opts in (("param", {}), ("type", {"max_width": 28}), ("default", {"max_width": 40}), ("meaning", {"ratio": 1})):
        table.add_column(col, overflow="fold", **opts)
    for name, type_, default, meaning in describe(cls.Params):
        if name == "member_defaults":
            continue  # filled in by the project from graduate.yaml
        table.add_row(escape(name), escape(type_), escape(json.dumps(default, default=str)), escape(meaning))
    console.print(table)
