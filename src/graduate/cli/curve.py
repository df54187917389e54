"""graduate curve PROJECT: quality against training-set size, and whether more labels pay."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console, fmt, quiet_libraries, stage_progress
from graduate.cli.options import number


def curve(
    project: Path = typer.Argument(..., help="Project directory (holds graduate.yaml)."),
    student: str = typer.Option("tfidf-logreg", "--student", help="Student kind to train at each size."),
    fractions: str = typer.Option("5,10,25,50,75,100", help="Shares of the labelled data, in percent, comma-separated."),
    seeds: int = typer.Option(3, min=1, help="Seeds (random subsets and training seeds) per share."),
    test_set: str | None = typer.Option(None, "--test-set", help="Test set to score on (default: the first quality test set)."),
    metric: str = typer.Option(None, help="Metric to plot: accuracy, f1, precision, recall, roc_auc; multi-label: micro_f1, macro_f1, exact_match. Default: accuracy (multi-label: micro_f1)."),
    more: int | None = typer.Option(None, "--more", min=1, help="How many more items to price (default: as many as are labelled now)."),
    min_gain: float = typer.Option(0.5, "--min-gain", parser=number("--min-gain", least=0), help="Below this many points of gain, the advice is to stop labelling."),
    mlflow: str | None = typer.Option(None, "--mlflow", help="Also log the runs to this MLflow tracking URI."),
) -> None:
    """Train at 5-100% of the labelled data (several seeds), fit a saturating curve, price more labels."""
    from graduate.errors import SpecError
    from graduate.experiments.curve import learning_curve
    from graduate.pipeline.project import Project

    try:
        percents = [float(x) for x in fractions.split(",") if x.strip()]
    except ValueError:
        raise SpecError(f"{fractions!r} is not a list of percentages, e.g. 5,10,25,50,75,100", field="--fractions") from None
    if not percents:
        raise SpecError("no percentages given; e.g. --fractions 5,10,25,50,75,100", field="--fractions")
    bad = [p for p in percents if not 0 < p <= 100]
    if bad:
        got = ", ".join(f"{p:g}" for p in bad)
        raise SpecError(f"percentages of the training set must be above 0 and at most 100, got {got}", field="--fractions")
    shares = [p / 100 for p in percents]
    from graduate.evaluate.evaluation import selection_metric

    proj = Project.load(project)
    allowed = ("micro_f1", "macro_f1", "exact_match", "micro_precision", "micro_recall") if proj.spec.task.multi_label else ("accuracy", "f1", "precision", "recall", "roc_auc")
    metric = metric or selection_metric(proj.spec.task)
    if metric not in allowed:
        raise SpecError(f"metric {metric!r} is not one of {', '.join(allowed)}", field="--metric")
    if mlflow:
        from graduate.experiments.mlflow_log import check_tracking

        check_tracking(mlflow)  # before the training, not after it
    quiet_libraries()
    with stage_progress() as progress:
        res = learning_curve(
            proj, kind=student, fractions=shares, seeds=list(range(seeds)), test_set=test_set, metric=metric,
            more_items=more, min_gain_points=min_gain, progress=progress,
        )
    t = Table(title=escape(f"learning curve: {student} on {res.test_set} ({res.dataset_size} labelled items)"), title_justify="left")
    t.add_column("share", justify="right")
    t.add_column("items", justify="right")
    t.add_column(f"{metric} mean", justify="right")
    t.add_column("sd", justify="right")
    t.add_column("seeds", justify="right")
    t.add_column("fit", justify="right")
    for p in res.points:
        t.add_row(f"{100 * p.fraction:g}%", str(p.size), fmt(p.mean), fmt(p.std), str(len(p.scores)), fmt(res.fit.predict(p.size)))
    if res.teacher_score is not None:
        t.caption = escape(f"teacher on {res.test_set}: {res.teacher_score:.3f}")
    console.print(t)
    if res.fit.ok:
        console.print(f"fit: {metric} = {res.fit.a:.3f} - {res.fit.b:.3f} * n^-{res.fit.c:.3f}  (plateau: {res.fit.plateau_text()})", highlight=False)
    console.print(f"[bold]{escape(res.advice.text)}[/]", highlight=False)
    console.print(escape(f"plot: {res.files['png']} and {res.files['svg']}; data: {res.files['json']}"), highlight=False)
    if mlflow:
        from graduate.experiments.mlflow_log import log_runs
        from graduate.store.runs import get_runs

        ids = {r.run_id for r in res.runs} | {res.evaluation_run_id}
        logged = log_runs(mlflow, proj.spec.task.name, [r for r in get_runs(proj.engine, root=proj.root) if r.id in ids])
        console.print(escape(f"logged {len(logged)} runs to MLflow at {mlflow}"), highlight=False)
