"""graduate data ...: build the training set with its cleaning steps, find label issues and
duplicates, the review queue (export, import), class balance, diversity, and the label-quality
comparison."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from graduate.cli.console import console, err_console, fmt, shown, stage_progress, step_notes, count_table
from graduate.cli.options import number, reviewer_name

app = typer.Typer(help="Training data: cleaning, label issues, review queue, balance, diversity.", no_args_is_help=True)
review_app = typer.Typer(help="The review queue: export suspects to CSV, import reviewers' corrections.", no_args_is_help=True)
app.add_typer(review_app, name="review")


def _loaded(project: Path, progress):  # type: ignore[no-untyped-def]
    """The project with its teacher logs and data in the store (both idempotent: a second call reads nothing)."""
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    proj.import_logs(progress)
    proj.load_data(progress)
    return proj


def _short(text: str, n: int = 90) -> str:
    t = " ".join(text.split())
    return shown(t[:n] + ("…" if len(t) > n else ""))  # a served text may hold ESC sequences too


def print_recipe(dataset) -> None:  # type: ignore[no-untyped-def]
    t = Table(title=escape(f"training set {dataset.name!r} v{dataset.id} ({len(dataset.examples)} items, hash {dataset.content_hash[:12]}): the recipe"), title_justify="left")
    for c in ["step", "dropped", "changed", "kept", "why"]:
        t.add_column(c, justify="left" if c in ("step", "why") else "right", overflow="fold")
    for s in dataset.recipe["steps"]:
        changed = s.get("changed")
        if s["step"] == "human_labels":
            changed = f"{s.get('changed', 0)} (+{s.get('added', 0)} added, {s.get('confirmed', 0)} confirmed)"
        elif s["step"] == "label_issues":
            changed = f"{s.get('changed', 0)} of {s.get('found', 0)} found"
        elif s["step"] == "balance":
            changed = escape(", ".join(f"{k} {v}" for k, v in s["after"].items()))
        elif s["step"] == "votes":
            changed = f"{s['ties_broken_by_first_answer']} ties"
        elif s.get("added") is not None:  # augmented, feedback, derived_labels
            changed = f"+{s['added']} added" if changed is None else f"{changed} (+{s['added']} added)"
        why = s.get("reason") or s.get("labeller") or ""
        if s["step"] == "teacher_answer":
            why = f"{s.get('labeller')}: {s.get('reason')}"
        if s.get("label_conflicts"):
            why += f" ({s['label_conflicts']} had another label)"
        why = "; ".join([str(why), *step_notes(s)])  # which answers did not parse and why; a prior not reached
        t.add_row(s["step"], fmt(s.get("dropped")), fmt(changed), fmt(s.get("kept")), escape(str(why)))
    console.print(t)


@app.command("build")
def build(project: Path = typer.Argument(..., help="Project directory (holds graduate.yaml).")) -> None:
    """Build the training set as graduate.yaml says (train.labeller, clean:) and show what each step did."""

    with stage_progress() as progress:
        proj = _loaded(project, progress)
        ds = proj.build_training_set(progress=progress)
    print_recipe(ds)
    console.print("every removed item is listed by example id in the recipe: `graduate data recipe PROJECT --step STEP`", highlight=False)


@app.command("recipe")
def recipe(
    project: Path = typer.Argument(..., help="Project directory."),
    dataset_id: int | None = typer.Option(None, "--dataset", min=1, max=2**63 - 1, help="Dataset version id (default: the newest)."),
    step: str | None = typer.Option(None, "--step", help="List the items this step removed, changed or added (augmented items with their lineage)."),
    show: int = typer.Option(20, "--show", min=0, help="Items shown."),
) -> None:
    """Show a stored dataset version's recipe, or the items one step removed (and why), changed or added."""
    from sqlalchemy import select

    from graduate.data.build import Dataset, latest_dataset_id, stored_recipe
    from graduate.errors import NotReadyError
    from graduate.pipeline.project import Project
    from graduate.store.schema import datasets, examples

    proj = Project.load(project)
    with proj.engine.connect() as conn:
        # The training set built last (`data issues` stores its own `train.issues` version beside it).
        wanted = dataset_id if dataset_id is not None else latest_dataset_id(conn, "train")
        row = conn.execute(select(datasets).where(datasets.c.id == wanted)).mappings().first() if wanted is not None else None
        recipe = stored_recipe(conn, int(row["id"])) if row is not None else None
    if row is None:
        raise NotReadyError(f"no dataset{' ' + str(dataset_id) if dataset_id else ''} stored; run `graduate data build {project}`")
    if step is None:
        ds = Dataset(row["name"], [None] * row["size"], [], recipe, row["content_hash"], id=row["id"])  # type: ignore[list-item]
        print_recipe(ds)
        return
    s = next((x for x in recipe["steps"] if x["step"] == step), None)
    if s is None:
        raise NotReadyError(f"dataset {row['id']} has no step {step!r}; its steps: {[x['step'] for x in recipe['steps']]}")
    items = s.get("removed") or s.get("changes") or s.get("ranked") or s.get("added_items") or []
    ids = [it[0] if isinstance(it, list) else it for it in items][:show]
    with proj.engine.connect() as conn:
        stored = conn.execute(select(examples.c.id, examples.c.text, examples.c.lineage).where(examples.c.id.in_(ids))).all() if ids else []
    texts = {r.id: r.text for r in stored}
    # an item graduate made (augment, synth, paraphrase): where it came from
    lineage = {r.id: "; ".join(f"{k}={v}" for k, v in r.lineage.items() if v is not None) for r in stored if r.lineage}
    t = Table(title=escape(f"dataset {row['id']} step {step}: {len(items)} items ({s.get('reason', '')})"), title_justify="left")
    for c in ["example id", "detail", "text"]:
        t.add_column(c, overflow="fold")
    for it in items[:show]:
        ex = it[0] if isinstance(it, list) else it
        detail = ", ".join(str(x) for x in it[1:]) if isinstance(it, list) else lineage.get(ex, "")
        t.add_row(str(ex), shown(detail), _short(texts.get(ex, "")))
    console.print(t)


@app.command("issues")
def issues(
    project: Path = typer.Argument(..., help="Project directory."),
    show: int = typer.Option(15, "--show", min=0, help="Suspects shown."),
) -> None:
    """Rank the training labels cleanlab finds probably wrong (out-of-fold student probabilities); changes nothing."""

    with stage_progress() as progress:
        proj = _loaded(project, progress)
        spec = proj.spec.model_copy(deep=True)
        if spec.clean.label_issues.action == "off":
            spec.clean.label_issues.action = "report"
        ds = proj.build_training_set(spec=spec, name="train.issues", progress=progress)
    found = ds.diagnostics["label_issues"]
    by_id = {ex.id: ex for ex in ds.examples}
    step = next(s for s in ds.recipe["steps"] if s["step"] == "label_issues")
    t = Table(title=f"{len(found['example_ids'])} of {len(ds.examples)} training labels are probably wrong ({step['folds']}-fold {step['student']}, cleanlab {step['filter_by']})", title_justify="left")
    faults = found.get("suspect_labels")  # multi-label: the labels at fault, +given / -missing
    cols = ["example id", "teacher label", *(["labels at fault"] if faults is not None else []), "quality", "text"]
    for c in cols:
        t.add_column(c, overflow="fold", justify="right" if c == "quality" else "left")
    for ex_id in found["example_ids"][:show]:
        fault = [escape(", ".join(faults.get(ex_id, [])))] if faults is not None else []
        t.add_row(shown(by_id[ex_id].external_id), escape(found["labels"][ex_id]), *fault, fmt(found["quality"][ex_id]), _short(by_id[ex_id].text))
    console.print(t)
    console.print(
        f"act on them with clean.label_issues.action: remove | down_weight in graduate.yaml, or review them: `graduate data review export {project}`",
        highlight=False,
    )


@app.command("duplicates")
def duplicates(
    project: Path = typer.Argument(..., help="Project directory."),
    threshold: float | None = typer.Option(None, parser=number("--threshold", least=0.01, most=1.0), help="Jaccard threshold (default: clean.near_duplicates.threshold)."),
    show: int = typer.Option(10, "--show", min=0, help="Pairs shown."),
) -> None:
    """Near-duplicate pairs in the labelled training pool (MinHash over character shingles); changes nothing."""

    with stage_progress() as progress:
        proj = _loaded(project, progress)
        spec = proj.spec.model_copy(deep=True)
        spec.clean.near_duplicates.enabled = True
        if threshold is not None:
            spec.clean.near_duplicates.threshold = threshold
        spec.clean.label_issues.action = "off"
        ds = proj.build_training_set(spec=spec, name="train.duplicates", progress=progress)
    step = next(s for s in ds.recipe["steps"] if s["step"] == "near_duplicates")
    exact = next(s for s in ds.recipe["steps"] if s["step"] == "exact_duplicates")
    console.print(
        f"exact duplicates: {exact['dropped']} ({exact.get('label_conflicts', 0)} with another label); near duplicates at Jaccard >= "
        f"{spec.clean.near_duplicates.threshold}: {step['dropped']} ({step.get('label_conflicts', 0)} with another label)",
        highlight=False,
    )
    from sqlalchemy import select

    from graduate.store.schema import examples

    ids = [r[0] for r in step["removed"][:show]]
    with proj.engine.connect() as conn:
        texts = dict(conn.execute(select(examples.c.id, examples.c.text).where(examples.c.id.in_(ids))).all()) if ids else {}
    if not step["removed"]:
        return
    t = Table(title="near duplicates (dropped item: why)", title_justify="left")
    t.add_column("example id")
    t.add_column("like")
    t.add_column("text", overflow="fold")
    for ex_id, why in step["removed"][:show]:
        t.add_row(str(ex_id), shown(why), _short(texts.get(ex_id, "")))
    console.print(t)
    console.print("drop them when building: clean.near_duplicates.enabled: true", highlight=False)


@app.command("balance")
def balance(project: Path = typer.Argument(..., help="Project directory.")) -> None:
    """Class counts of the training set before and after the spec's balance strategy, and the class weights that would even them."""
    from graduate.data.balance import class_weights, label_set_weights

    with stage_progress() as progress:
        proj = _loaded(project, progress)
        ds = proj.build_training_set(progress=progress)
    step = next(s for s in ds.recipe["steps"] if s["step"] == "balance")
    multi = proj.spec.task.multi_label
    cw = label_set_weights(ds.labels, proj.spec.task.labels)[1] if multi else class_weights(ds.labels, proj.spec.task.labels)
    t = Table(title=f"{'label' if multi else 'class'} balance (clean.balance.strategy: {step['strategy']})", title_justify="left")
    for c in ["label", "before", "share", "after", "share ", "balanced class weight"]:
        t.add_column(c, justify="left" if c == "label" else "right")
    # multi-label: an item may carry several labels, so a share is of the items (not of the counts)
    nb = (len(ds.labels) + step.get("dropped", 0) if multi else sum(step["before"].values())) or 1
    na = (len(ds.labels) if multi else sum(step["after"].values())) or 1
    weighted = step.get("weighted_shares") or {}  # multi-label prior: the share the weights give each label
    for lab in proj.spec.task.labels:
        b, a = step["before"].get(lab, 0), step["after"].get(lab, 0)
        after_share = f"{weighted[lab]:.1%} weighted" if lab in weighted else f"{a / na:.1%}"
        t.add_row(escape(lab), str(b), f"{b / nb:.1%}", str(a), after_share, fmt(cw.get(lab)))
    console.print(t)
    if step["strategy"] != "none":
        what = {"class_weight": "weights each class to even them", "undersample": "drops items of the commoner classes", "prior": "weights each class to its production share"}
        console.print(f"clean.balance.strategy {step['strategy']} {what.get(step['strategy'], 'applied')}: the 'after' columns are what students train on", highlight=False)
        return
    console.print(
        "balancing is reported, not forced: set clean.balance.strategy to class_weight"
        + (" (each item weighs its rarest label), prior (each label's production share) or undersample " if multi else ", prior or undersample ")
        + "to change it "
        "(a balanced set shifts the student's prior away from the rates it will see)",
        highlight=False,
    )


@app.command("diversity")
def diversity(
    project: Path = typer.Argument(..., help="Project directory."),
    export: Path | None = typer.Option(None, "--export", help="Write the pool items of uncovered clusters to this CSV (id, text) for `graduate label --input`."),
    show: int = typer.Option(8, "--show", min=0, help="Clusters shown."),
) -> None:
    """Embedding clusters of the unlabelled pool vs the training set: the regions the training set does not cover."""
    import csv

    from graduate.cli.console import quiet_libraries
    from graduate.data.diversity import coverage_report
    from graduate.data.examples import select_examples, selection_examples

    from graduate.errors import check_output_file, written_whole

    quiet_libraries()
    if export is not None:
        check_output_file(export)  # before the work, not after it
    with stage_progress() as progress:
        proj = _loaded(project, progress)
        d = proj.spec.clean.diversity
        ds = proj.build_training_set(progress=progress)
        progress("embed and cluster", 0, 1)
        in_train = {ex.id for ex in ds.examples}
        test_ids = {ex.id for ts in proj.spec.test_sets for ex in selection_examples(proj.engine, ts)}
        candidates = select_examples(proj.engine, source=proj.spec.train.source, tags=d.pool_tags)
        pool = [(ex.id, ex.text) for ex in candidates if ex.id not in in_train and ex.id not in test_ids]
        rep = coverage_report(pool, [(ex.id, ex.text) for ex in ds.examples], clusters=d.clusters, sample=d.sample, embedding=d.embedding, min_coverage=d.min_coverage, seed=proj.spec.seed)
        progress("embed and cluster", 1, 1)
    if not rep["clusters"]:
        console.print(
            f"nothing to compare: {rep['pool_items']} unlabelled pool items (clean.diversity.pool_tags {d.pool_tags}, minus the training "
            f"and test sets) and {rep['train_items']} training items",
            highlight=False,
        )
        return
    t = Table(
        title=f"pool ({rep['pool_items']} unlabelled items) vs training set ({rep['train_items']}): {rep['k']} clusters of {rep['method']} embeddings, least covered first",
        title_justify="left",
    )
    for c in ["cluster", "pool share", "train share", "coverage", "", "nearest pool items"]:
        t.add_column(c, justify="left" if c in ("cluster", "", "nearest pool items") else "right", overflow="fold")
    for r in rep["clusters"][:show]:
        t.add_row(
            str(r["cluster"]), f"{r['pool_share']:.1%}", f"{r['train_share']:.1%}", fmt(r["coverage"], 2),
            "[red]not covered[/]" if not r["covered"] else "", " | ".join(_short(x, 50) for x in r["example_texts"]),
        )
    console.print(t)
    console.print(f"{len(rep['uncovered'])} clusters ({rep.get('uncovered_pool_share', 0):.1%} of the pool) are under-represented in the training set", highlight=False)
    if export is not None:
        by_id = dict(pool)
        ids = [i for r in rep["clusters"] if not r["covered"] for i in r["pool_ids"]]
        if not ids:
            console.print(escape(f"every cluster is covered: nothing written to {export}"), highlight=False)
            return
        with written_whole(export, newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", proj.spec.task.text_column])
            for i in ids:
                w.writerow([i, by_id[i]])
        console.print(escape(f"{len(ids)} pool items of uncovered clusters written to {export}; label them with `graduate label {project} --input {export} --id-column id`"), highlight=False)


@review_app.command("export")
def review_export(
    project: Path = typer.Argument(..., help="Project directory."),
    out: Path | None = typer.Option(None, "--out", help="CSV to write (default: PROJECT/.graduate/review/queue.csv)."),
    limit: int | None = typer.Option(None, "--limit", min=1, max=2**63 - 1, help="At most this many rows (the most suspect first)."),
) -> None:
    """Write the training set's suspected label errors (cleanlab) and teacher disagreements to a review CSV."""
    from graduate.data.examples import labels_for
    from graduate.data.review import check_queue_free, queue_rows, served_rows, teacher_disagreements, write_queue
    from graduate.errors import check_output_file

    if out is not None:
        check_output_file(out)  # before the work, not after it
    with stage_progress() as progress:
        proj = _loaded(project, progress)
        target = out or proj.workdir / "review" / "queue.csv"
        check_output_file(target)  # before any work: a folder or a path under a file is refused in one line
        check_queue_free(proj.engine, target, project=project, option="--out")
        spec = proj.spec.model_copy(deep=True)
        spec.clean.label_issues.action = "report"  # the queue lists suspects; removing them is the build's business
        ds = proj.build_training_set(spec=spec, name="train.review", progress=progress)
        progress("teacher disagreements", 0, 1)
        dis = teacher_disagreements(proj.engine, spec, ds.examples)
        progress("teacher disagreements", 1, 1)
    gold = labels_for(proj.engine, [ex.id for ex in ds.examples], kind="gold")
    rows = queue_rows(spec, ds, gold, dis, limit=limit)
    listed = {r["example_id"] for r in rows}
    served = [r for r in served_rows(proj.engine, spec, limit=limit) if r["example_id"] not in listed]
    rows = (rows + served)[:limit] if limit is not None else rows + served
    path = write_queue(target, rows, spec.task.labels)
    n_issue = sum(r["group"] == "label_issue" for r in rows)
    n_served = sum(r["group"] == "served_disagreement" for r in rows)
    labels = spec.task.labels
    what = f"a set of {labels}, ';'-joined, or (none) for no label" if spec.task.multi_label else f"one of {labels}"
    console.print(
        f"{len(rows)} rows written to {path}: {n_issue} suspected label errors, {len(rows) - n_issue - n_served} teacher disagreements, "
        f"{n_served} served items where the teacher disagreed with the student",
        highlight=False,
    )
    console.print(
        escape(f"fill in corrected_label ({what}) and reviewer, then `graduate data review import {project} {path}`"),
        highlight=False,
    )


@review_app.command("import")
def review_import(
    project: Path = typer.Argument(..., help="Project directory."),
    file: Path = typer.Argument(..., help="A review CSV with corrected_label filled in (from `graduate data review export` or `graduate errors`)."),
    reviewer: str | None = typer.Option(None, "--reviewer", callback=reviewer_name, help="Who reviewed, for rows whose reviewer column is empty."),
) -> None:
    """Store reviewers' corrections as human labels: they win over teacher labels in the next build."""
    from graduate.data.review import import_review
    from graduate.pipeline.project import Project

    proj = Project.load(project)
    rep = import_review(proj.engine, file, proj.spec.task.labels, reviewer=reviewer, multi_label=proj.spec.task.multi_label, max_labels=proj.spec.task.parse.max_labels, none_word=proj.spec.task.parse.none)
    t = count_table(escape(f"{file.name}: {rep.rows} rows"))
    for name, value in [
        ("new human labels", rep.added),
        ("changed (the reviewer's earlier label replaced, old value kept in label_changes)", rep.changed),
        ("unchanged (same label as before)", rep.unchanged),
        ("of these, different from the teacher's label", rep.overrides_teacher),
        ("not reviewed (corrected_label empty)", rep.not_reviewed),
        ("skipped", len(rep.skipped)),
    ]:
        t.add_row(name, str(value))
    if rep.not_in_file:
        t.add_row("of the new and changed, items no longer in their data file (label kept; they stay out of training and test sets)", str(rep.not_in_file))
    if rep.carried:
        t.add_row("carried onto an item of the same text still in a data file (its new id)", str(rep.carried))
    console.print(t)
    for s in rep.skipped[:20]:
        err_console.print(f"[yellow]skipped[/] {escape(s)}", highlight=False)
    if len(rep.skipped) > 20:
        err_console.print(f"... and {len(rep.skipped) - 20} more skipped rows", highlight=False)
    if rep.added or rep.changed:  # nothing new to train on otherwise
        console.print(escape(f"next: `graduate run {project}` (or `graduate data build`) trains on the corrected labels"), highlight=False)
    if rep.skipped:
        raise typer.Exit(1)


@app.command("compare")
def compare(
    project: Path = typer.Argument(..., help="Project directory."),
    review_items: int = typer.Option(300, "--review-items", min=0, help="Queue rows the simulated reviewer answers with gold (variant d)."),
    student: str = typer.Option("tfidf-logreg", "--student", help="Student kind trained on each variant."),
) -> None:
    """Train one student on (a) raw, (b) cleaned, (c) ensemble / self-consistency and (d) reviewed labels; score each against gold.

    Runs in a scratch store; the figures go to PROJECT/.graduate/label_quality.json and summary.json."""
    from graduate.cli.console import quiet_libraries
    from graduate.experiments.label_quality import compare_label_quality

    quiet_libraries()
    with stage_progress() as progress:
        result = compare_label_quality(project, review_items=review_items, student=student, progress=progress)
    print_label_quality(result)


def print_label_quality(result: dict) -> None:  # type: ignore[type-arg]
    variants = result["variants"]
    tests = list(next(iter(variants.values()))["tests"]) if variants else []
    t = Table(title=escape(f"{result['student']} trained on versions of the training labels, scored against gold"), title_justify="left")
    t.add_column("training labels")
    t.add_column("items", justify="right")
    t.add_column("labels right (vs gold)", justify="right")
    # label sets: exact set match (paired with a) and micro-F1; otherwise accuracy and F1
    right, f1 = ("exact_match", "micro_f1") if result.get("multi_label") else ("accuracy", "f1")
    for name in tests:
        t.add_column(escape(f"{name} {'exact set match' if right == 'exact_match' else 'accuracy'}"), justify="right")
        t.add_column("vs a [95% CI]", justify="right")
        t.add_column("micro-F1" if f1 == "micro_f1" else "F1", justify="right")

    def delta(m: dict) -> str:  # type: ignore[type-arg]
        d = m.get(f"{right}_vs_raw")
        if not d or d["difference"] is None:
            return "–"
        return f"{d['difference']:+.3f} " + (f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d["ci95"] else "[–]")

    for key, v in variants.items():
        t.add_row(
            key, str(v["train_size"]), fmt(v["train_label_accuracy_vs_gold"]),
            *[x for n in tests for x in (fmt(v["tests"][n].get(right)), delta(v["tests"][n]), fmt(v["tests"][n].get(f1)))],
        )
    console.print(t)
    for n in result.get("notes", []):
        console.print(f"note: {escape(n)}", highlight=False)
