"""``graduate curve``: train a student on growing shares of the labelled data (several seeds each),
score each on a test set, fit a saturating curve and say whether more labels are worth buying.

Every point is a tracked train run keyed by (kind, params, subset hash, seed), so an interrupted
curve resumes and a repeated one retrains nothing. The figure (PNG and SVG) and its data (JSON)
are written under ``PROJECT/.graduate/`` for the report.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from graduate.data.balance import per_label_counts
from graduate.data.build import Dataset, save_dataset
from graduate.data.teacher_labels import teacher_labels
from graduate.errors import SpecError
from graduate.evaluate.cost import teacher_cost
from graduate.evaluate.curve import Advice, CurveFit, CurvePoint, fit_saturating, marginal_value, plot_curve, summarise
from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.pipeline.scoring import evaluation_run
from graduate.spec import StudentSpec

if TYPE_CHECKING:
    from graduate.pipeline.project import Project

DEFAULT_FRACTIONS = (0.05, 0.10, 0.25, 0.50, 0.75, 1.0)


@dataclass
class CurveRun:
    fraction: float
    seed: int
    size: int
    run_id: str
    reused: bool
    fit_seconds: float
    scores: dict[str, float]  # test set -> metric


@dataclass
class CurveResult:
    kind: str
    metric: str
    test_set: str
    dataset_size: int
    runs: list[CurveRun]
    points: list[CurvePoint]
    fit: CurveFit
    advice: Advice
    teacher_score: float | None
    teacher_cost_per_item_usd: float | None
    files: dict[str, str]
    evaluation_run_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "metric": self.metric,
            "test_set": self.test_set,
            "dataset_size": self.dataset_size,
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "points": [asdict(p) for p in self.points],
            "runs": [asdict(r) for r in self.runs],
            "fit": asdict(self.fit),
            "advice": self.advice.as_dict(),
            "teacher_score": self.teacher_score,
            "teacher_cost_per_item_usd": self.teacher_cost_per_item_usd,
            "files": self.files,
            "evaluation_run_id": self.evaluation_run_id,
        }


def subsample(dataset: Dataset, fraction: float, seed: int) -> Dataset:
    """A stratified random share of the dataset (every label keeps its share, at least one item)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(dataset.labels)
    keep: list[int] = []
    for lab in sorted(set(dataset.labels)):
        idx = np.flatnonzero(labels == lab)
        k = max(1, int(round(fraction * len(idx))))
        keep += rng.choice(idx, size=k, replace=False).tolist()
    keep.sort()
    # Weights (balance) are part of the version, as for the full set: other weights, other runs.
    sub = dataset.take(keep, name=f"{dataset.name}@{fraction:g}", step={"step": "subset", "fraction": fraction, "seed": seed, "kept": len(keep)})
    return replace(sub, recipe={**dataset.recipe, "subset": {"of": dataset.content_hash, "fraction": fraction, "seed": seed, "size": len(keep)}})


def check_fractions(dataset: Dataset, fractions: Sequence[float], labels: list[str], min_per_label: int = 2, *, multi_label: bool = False) -> None:
    """Every share must give each label at least ``min_per_label`` items (multi-label: items
    carrying it); else say which share to drop."""
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise SpecError(f"fractions must be in (0, 1], got {bad}; e.g. --fractions 5,10,25,50,75,100 (percent)", field="--fractions")
    counts = per_label_counts(dataset.labels, labels) if multi_label else dataset.label_counts
    present = [lab for lab in labels if counts.get(lab, 0) > 0]
    if len(present) < 2:
        raise SpecError(
            f"the training set has one class only ({counts}); a learning curve needs items of at least two labels", field="train"
        )
    smallest = min(fractions)
    short = {lab: counts[lab] for lab in present if math.floor(smallest * counts[lab] + 0.5) < min_per_label}
    if short:
        need = max(min_per_label / counts[lab] for lab in short)
        raise SpecError(
            f"too few rows for fraction {smallest:g}: the training set has {counts} and {100 * smallest:g}% of {short} is under "
            f"{min_per_label} items per label; drop the smallest fractions (use at least {math.ceil(100 * need)}%) or label more items",
            field="--fractions",
        )


def learning_curve(
    project: "Project",
    *,
    kind: str = "tfidf-logreg",
    params: dict[str, Any] | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seeds: Sequence[int] = (0, 1, 2),
    test_set: str | None = None,
    metric: str = "accuracy",
    more_items: int | None = None,
    min_gain_points: float = 0.5,
    progress: ProgressFn | None = None,
) -> CurveResult:
    progress = progress or no_progress
    if not seeds:
        raise SpecError("give at least one seed, e.g. --seeds 3", field="--seeds")
    # A share or seed given twice is the same run: counted twice it would pass for another seed.
    fractions, seeds = sorted(set(fractions)), list(dict.fromkeys(seeds))
    spec = project.spec
    names = [t.name for t in spec.test_sets]
    if test_set is not None and test_set not in names:
        raise SpecError(f"unknown test set {test_set!r}; the spec's test sets are {names}", field="--test-set")
    base = next((s for s in spec.students if s.kind == kind), None)
    sspec_params = {**(base.params if base else {}), **(params or {})}
    from graduate.students.registry import LADDER

    if kind not in LADDER:
        raise SpecError(f"unknown student kind {kind!r}; known kinds, smallest first: {LADDER}", field="--student")
    project.import_logs(progress)
    project.load_data(progress)
    progress("build training set", 0, 1)
    dataset = project.build_training_set()
    progress("build training set", 1, 1)
    check_fractions(dataset, fractions, spec.task.labels, multi_label=spec.task.multi_label)

    answers = teacher_labels(project.engine, spec.task, spec.teacher, dataset.examples, record=False)
    cost = teacher_cost(project.spec, [a.call for a in answers.values() if a.call is not None]).per_1k_usd
    per_item = None if cost is None else cost / 1000

    runs: list[CurveRun] = []
    # Progress counts training items, not runs: the largest share trains last and longest, so a count
    # of runs made the time left look far shorter than it was.
    share = {f: max(1, round(f * len(dataset.examples))) for f in fractions}
    stage, done, total = "learning curve (items trained)", 0, sum(share.values()) * len(seeds)
    with evaluation_run(project, f"curve:{kind}", dataset.content_hash) as board:
        target = test_set or (board.quality_sets[0] if board.quality_sets else board.tests[0].name)
        for f in fractions:
            for seed in seeds:
                progress(stage, done, total)
                sub = subsample(dataset, f, seed)
                sub.id = save_dataset(project.engine, sub)
                name = f"{kind}@{f:.0%}/seed{seed}"
                tr = project.train(StudentSpec(kind=kind, name=name, params=sspec_params), sub, seed=seed, progress=progress)
                tests = board.add(name, tr.run_id, tr.student)
                done += share[f]
                runs.append(CurveRun(f, seed, len(sub.examples), tr.run_id, tr.reused, tr.fit_seconds, {t: float(m[metric]) for t, m in tests.items() if m.get(metric) is not None}))
        progress(stage, total, total)
        board.close({"curve": kind, "runs": [r.run_id for r in runs]})

    points = summarise([(r.fraction, r.size, r.scores[target]) for r in runs if target in r.scores])
    fit = fit_saturating(points)
    more = more_items if more_items is not None else len(dataset.examples)
    advice = marginal_value(fit, len(dataset.examples), more, per_item, min_gain_points)
    teacher_score = (board.entries.get(target, {}).get("teacher") or {}).get(metric)
    stem = f"curve-{kind}"
    files = {"png": str(project.workdir / f"{stem}.png"), "svg": str(project.workdir / f"{stem}.svg"), "json": str(project.workdir / f"{stem}.json")}
    plot_curve(
        points, fit, title=f"{spec.task.name}: {kind} on {target}", metric=metric, png=Path(files["png"]), svg=Path(files["svg"]), teacher_score=teacher_score
    )
    result = CurveResult(kind, metric, target, len(dataset.examples), runs, points, fit, advice, teacher_score, per_item, files, board.run_id)
    Path(files["json"]).write_text(json.dumps(result.as_dict(), indent=2))
    return result
