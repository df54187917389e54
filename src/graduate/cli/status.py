"""graduate status PROJECT: what the store holds."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import typer
from sqlalchemy import func, select

from rich.markup import escape

from graduate.cli.console import console, count_table
from graduate.errors import usd


def status(project: Path = typer.Argument(..., help="Project directory.")) -> None:
    """Counts of calls, examples, labels and runs in the project's store."""
    from graduate.data.examples import orphaned_reviews
    from graduate.pipeline.project import Project
    from graduate.serve.proxy_owner import pending_elsewhere
    from graduate.store.calls import count_by_status, live_spend, redaction_counts
    from graduate.store.schema import batches, datasets, examples, labels, runs
    from graduate.store.db import safe_url

    proj = Project.load(project)
    t = count_table(escape(f"{proj.spec.task.name}: store {safe_url(proj.engine.url)}"))
    for key, n in sorted(count_by_status(proj.engine).items()):
        t.add_row(f"teacher calls {key}", str(n))
    for elsewhere in pending_elsewhere(proj.engine):
        # Not ours to fail: only that host can tell whether its proxy still waits on them.
        t.add_row(
            escape(f"of those proxy:pending, with the proxy on host {elsewhere.host} (oldest {_age(elsewhere.oldest)} old; "
                   "its next start there fails those it left)"),
            str(elsewhere.calls),
        )  # fmt: skip
    listed = {d.name for d in proj.spec.data}
    with proj.engine.connect() as conn:
        t.add_row("examples", str(conn.execute(select(func.count()).select_from(examples)).scalar_one()))
        for source, n in conn.execute(select(examples.c.source, func.count()).where(examples.c.absent_since.is_not(None)).group_by(examples.c.source).order_by(examples.c.source)):
            # kept, not trained on or tested: ABSENT_NOTE says why
            if source in listed:
                t.add_row(escape(f"examples of {source} no longer in its data file (left out of training and test sets; labels kept)"), str(n))
            else:
                t.add_row(escape(f"examples of {source}, a source no longer listed under data: (left out of training and test sets; labels kept)"), str(n))
        orphans = orphaned_reviews(proj.engine)
        if orphans:  # no present item has their text: they label nothing trained on or tested
            t.add_row("reviewers' labels of items no longer in a data file, no present item of the same text (unused; kept)", str(orphans))
        parsed = labels.c.label.is_not(None)
        for kind, ok, n in conn.execute(select(labels.c.kind, parsed, func.count()).group_by(labels.c.kind, parsed).order_by(labels.c.kind, parsed.desc())):
            # a stored answer that did not parse has no label: it labels nothing
            t.add_row(f"labels {kind}" if ok else f"answers {kind} that did not parse (no label)", str(n))
        t.add_row("dataset versions", str(conn.execute(select(func.count()).select_from(datasets)).scalar_one()))
        for st, n in conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status)):
            t.add_row(f"runs {st}", str(n))
        for st, n in conn.execute(select(batches.c.state, func.count()).group_by(batches.c.state)):
            t.add_row(f"Batch API batches {'open' if st != 'collected' else 'collected'} ({st})", str(n))
    t.add_row("teacher spend and reservations (USD)", f"{live_spend(proj.engine):.4f} of {usd(proj.spec.teacher.budget_usd)[1:]}")
    t.add_row("privacy.redact", "on" if proj.spec.privacy.redact else "off")
    for where, counts in redaction_counts(proj.engine).items():
        for name, n in counts.items():
            t.add_row(escape(f"redacted in {where}: <{name}_n>"), str(n))
    console.print(t)


def _age(since: datetime) -> str:
    """How long ago ``since`` was, to its largest unit and the next: "2 d 3 h", "4 min 10 s", "1 d"."""
    left = max(0, int((datetime.now(timezone.utc) - since).total_seconds()))
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    first = next((i for i, (_, size) in enumerate(units) if left >= size), len(units) - 1)
    parts = []
    for unit, size in units[first : first + 2]:
        n, left = divmod(left, size)
        if n or not parts:
            parts.append(f"{n} {unit}")
    return " ".join(parts)
