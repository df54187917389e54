"""Does better label data make a better student? The same student trained on four versions of
the training set, each scored against gold on the quality test sets:

a. raw:      the spec teacher's labels, only the foundation's drops (unanswered, unparseable,
             test overlap, exact duplicates);
b. cleaned:  (a) plus rule filters, near-duplicate removal and cleanlab label-issue removal
             (b2: the same suspects down-weighted instead of removed);
c. ensemble: a vote over the audited teacher configurations (``train.labeller: ensemble``), or, when
             no audit config other than the teacher labelled the pool, self-consistency over the
             teacher's repeated answers (dropping items whose answers tie); ``notes`` says which;
d. reviewed: (b) plus corrections of the first ``review_items`` rows of its review queue by a
             simulated reviewer who answers with the gold label (the data has gold for the training
             pool; a real project would have a person here).

Runs in a scratch store (``PROJECT/.graduate/label_quality/``) so the simulated reviewer's labels
never reach the project's own store; writes ``label_quality.json`` and the ``label_quality`` key of
``summary.json`` in ``PROJECT/.graduate/``.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from graduate.pipeline.progress import ProgressFn, no_progress
from graduate.spec import SPEC_FILENAME, ProjectSpec, StudentSpec

SIMULATED_REVIEWER = "simulated-gold"
# Per task shape (multi-label?): the figure each variant's paired difference with (a) is of, then the
# others kept per test set. Label sets have no accuracy: exact set match, micro- and macro-F1.
HEADLINE = {False: ("accuracy", "f1"), True: ("exact_match", "micro_f1", "macro_f1", "hamming_loss")}


def _scratch(root: Path, spec_path: Path) -> Path:
    """A copy of the spec with absolute paths and its own default store, in PROJECT/.graduate/label_quality."""
    raw = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    base = spec_path.parent
    for d in raw.get("data", []):
        d["path"] = str((base / d["path"]).resolve())
    for log in raw.get("teacher_logs", []):
        log["input"] = str((base / log["input"]).resolve())
        if log.get("output"):
            log["output"] = str((base / log["output"]).resolve())
    raw.get("store", {}).pop("url", None)
    target = root / ".graduate" / "label_quality"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / SPEC_FILENAME).write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return target


def paired_difference(correct: np.ndarray, baseline: np.ndarray, *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Accuracy minus the baseline's on the same items, with a paired percentile bootstrap 95% interval
    (None under two items: nothing to resample)."""
    from scipy.stats import bootstrap

    diff = correct - baseline
    if len(diff) < 2:
        return {"difference": float(diff.mean()) if len(diff) else None, "ci95": None}
    res = bootstrap((diff,), np.mean, n_resamples=resamples, confidence_level=0.95, method="percentile", rng=np.random.default_rng(seed))
    return {"difference": float(diff.mean()), "ci95": [float(res.confidence_interval.low), float(res.confidence_interval.high)]}


def variant_specs(spec: ProjectSpec, *, ensemble_possible: bool) -> dict[str, ProjectSpec]:
    """The spec of each variant: everything else as in the project's spec."""
    from graduate.spec import CleanSpec, LabellerSpec

    def copy(labeller: LabellerSpec, clean: CleanSpec) -> ProjectSpec:
        s = spec.model_copy(deep=True)
        s.train.labeller = labeller
        s.clean = clean
        return s

    raw_clean = CleanSpec(human_labels=False)
    cleaned = spec.clean.model_copy(deep=True)
    cleaned.human_labels = False
    cleaned.near_duplicates.enabled = True
    if cleaned.label_issues.action in ("off", "report"):
        cleaned.label_issues.action = "remove"
    if cleaned.filters.min_chars is None:
        cleaned.filters.min_chars = 3
    reviewed = cleaned.model_copy(deep=True)
    reviewed.human_labels = True
    # Without other teachers on the pool, a majority over the teacher's own repeated answers can
    # only differ from its first answer on ties: those items are dropped instead (min_vote_share).
    ens = (
        LabellerSpec(kind="ensemble", method="weighted")
        if ensemble_possible
        else LabellerSpec(kind="self_consistency", min_vote_share=0.51)
    )
    down = cleaned.model_copy(deep=True)
    down.label_issues.action = "down_weight"
    return {
        "a_raw": copy(LabellerSpec(), raw_clean),
        "b_cleaned": copy(LabellerSpec(), cleaned),
        "b2_cleaned_down_weighted": copy(LabellerSpec(), down),
        "c_ensemble": copy(ens, raw_clean),
        "d_reviewed": copy(LabellerSpec(), reviewed),
    }


def compare_label_quality(
    project_dir: Path,
    *,
    review_items: int = 300,
    student: str = "tfidf-logreg",
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Run the four variants (see the module docstring) and return the table with its notes."""
    from graduate.data.examples import labels_for
    from graduate.data.review import import_review, queue_rows, teacher_disagreements, write_queue
    from graduate.evaluate.metrics import classification_metrics
    from graduate.evaluate.multi_label import indicator_matrix, multi_label_metrics
    from graduate.formats import labelset
    from graduate.pipeline.project import Project
    from graduate.pipeline.validate import load_checked_spec as load_spec
    from graduate.experiments.audit import run_audit, save_audit_files

    spec0, root = load_spec(project_dir)
    scratch = _scratch(root, root / SPEC_FILENAME)
    proj = Project.load(scratch)
    t0 = time.perf_counter()
    proj.import_logs(progress)
    proj.load_data(progress)
    tests = [t for t in proj.load_test_sets() if any(s.name == t.name and s.purpose == "quality" for s in proj.spec.test_sets)]
    notes: list[str] = []

    # Which audit configs other than the teacher have answers on the training pool?
    from graduate.data.examples import select_examples
    from graduate.data.votes import config_answers
    from graduate.spec import audit_configs

    pool = select_examples(proj.engine, source=proj.spec.train.source, tags=proj.spec.train.tags)
    others = {}
    for cfg in audit_configs(proj.spec) if proj.spec.audit.configs else []:
        if cfg.teacher.labeller == proj.spec.teacher.labeller:
            continue
        got = config_answers(proj.engine, proj.spec.task, cfg.teacher, pool, n=cfg.n, record=False)
        others[cfg.name] = sum(1 for ex in pool if got.label(ex.id) is not None)
    # An ensemble needs other teachers on (most of) the pool; a handful of shared items would make
    # "the ensemble" the teacher alone under another name.
    ensemble_possible = bool(others) and max(others.values()) >= 0.5 * len(pool)
    if proj.spec.audit.configs:
        progress("teacher audit", 0, 1)
        save_audit_files(proj.engine, proj.workdir, run_audit(proj.engine, proj.spec))
        progress("teacher audit", 1, 1)
    if not ensemble_possible:
        notes.append(
            f"c: no teacher configuration other than the spec's teacher answered half of the {len(pool)} training-pool items "
            f"({', '.join(f'{k}: {v}' for k, v in others.items()) or 'no audit configs'}), so an ensemble over the pool is the "
            "teacher alone; c is self-consistency instead: the majority over the teacher's repeated recorded answers, "
            "dropping the items whose answers tie (min_vote_share 0.51)"
        )
    specs = variant_specs(proj.spec, ensemble_possible=ensemble_possible)
    multi = proj.spec.task.multi_label
    rows: dict[str, Any] = {}
    correct: dict[tuple[str, str], np.ndarray] = {}
    pool_gold = labels_for(proj.engine, [ex.id for ex in pool], kind="gold")

    def run_variant(key: str, vspec: ProjectSpec) -> None:
        progress(f"variant {key}: build", 0, 1)
        ds = proj.build_training_set(spec=vspec, name=f"train.{key}", progress=progress)
        progress(f"variant {key}: build", 1, 1)
        vproj = Project(vspec, proj.root, proj.engine)
        tr = vproj.train(StudentSpec(kind=student, name=f"{student}[{key}]"), ds, progress=progress)
        with_gold = [(lab, pool_gold.get(ex.id)) for ex, lab in zip(ds.examples, ds.labels) if pool_gold.get(ex.id) is not None]
        entry: dict[str, Any] = {
            "dataset_id": ds.id,
            "dataset_hash": ds.content_hash,
            "train_size": len(ds.examples),
            "label_counts": ds.label_counts,
            "train_label_accuracy_vs_gold": sum(a == b for a, b in with_gold) / len(with_gold) if with_gold else None,
            "down_weighted": sum(1 for w in ds.weights if w < 1.0),
            "run_id": tr.run_id,
            "steps": [{k: v for k, v in s.items() if k in ("step", "dropped", "changed", "added", "confirmed", "found", "kept", "reason")} for s in ds.recipe["steps"]],
            "tests": {},
        }
        for test in tests:
            probs = tr.student.predict_proba([ex.text for ex in test.examples])
            if multi:
                # label sets: the sets the student answers (its thresholds), not its likeliest single label
                pred = tr.student.decide(probs)
                order = vspec.task.labels

                def matrix(values: list[str]) -> np.ndarray:
                    return indicator_matrix([labelset.decode(v, order) or frozenset() for v in values], order)

                m = multi_label_metrics(matrix(list(test.gold)), matrix(pred), labels=order, resamples=0)
                entry["tests"][test.name] = {k: m.get(k) for k in ("n", *HEADLINE[True])}
            else:
                pred = [tr.student.labels[i] for i in probs.argmax(axis=1)]
                m = classification_metrics(test.gold, pred, labels=vspec.task.labels, positive=vspec.task.positive, scores=probs)
                entry["tests"][test.name] = {k: m.get(k) for k in ("n", "accuracy", "precision", "recall", "f1", "fpr", "tpr", "roc_auc")}
            # per item: right (the whole set, for label sets) or not; its mean is accuracy / exact set match
            correct[(key, test.name)] = np.array([p == g for p, g in zip(pred, test.gold)], dtype=float)
            if key != "a_raw":
                entry["tests"][test.name][f"{HEADLINE[multi][0]}_vs_raw"] = paired_difference(correct[(key, test.name)], correct[("a_raw", test.name)], seed=vspec.seed)
        steps = {s["step"]: s for s in ds.recipe["steps"]}
        entry["labeller"] = steps["teacher_answer"].get("labeller")
        if "items_with_several_answers" in steps.get("teacher_answer", {}):
            entry["items_with_several_answers"] = steps["teacher_answer"]["items_with_several_answers"]
        if "low_agreement" in steps:
            entry["dropped_ties"] = steps["low_agreement"]["dropped"]
        rows[key] = entry
        if key == "b_cleaned":
            entry["_dataset"] = ds

    for key in ("a_raw", "b_cleaned", "b2_cleaned_down_weighted", "c_ensemble"):
        run_variant(key, specs[key])

    # d: the review queue of (b), its first rows answered with gold by a simulated reviewer
    ds_b = rows["b_cleaned"].pop("_dataset")
    removed = next((s for s in ds_b.recipe["steps"] if s["step"] == "label_issues"), None)
    # The queue covers what the build kept and what label-issue removal dropped (a reviewer can
    # rescue a wrongly dropped item): rebuild (b) with label issues reported, not removed.
    report_spec = specs["b_cleaned"].model_copy(deep=True)
    report_spec.clean.label_issues.action = "report"
    ds_report = proj.build_training_set(spec=report_spec, name="train.b_cleaned.review", progress=progress)
    gold_all = labels_for(proj.engine, [ex.id for ex in ds_report.examples], kind="gold")
    queue = queue_rows(proj.spec, ds_report, gold_all, teacher_disagreements(proj.engine, proj.spec, ds_report.examples))
    path = write_queue(proj.workdir / "review_queue.csv", queue, proj.spec.task.labels)
    answered = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        for i, r in enumerate(reader):
            if i < review_items and r["gold"]:
                r["corrected_label"], r["reviewer"], r["note"] = r["gold"], SIMULATED_REVIEWER, "simulated: the gold label"
            answered.append(r)
    reviewed = proj.workdir / "review_queue.reviewed.csv"
    with reviewed.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(answered)
    imp = import_review(proj.engine, reviewed, proj.spec.task.labels, multi_label=proj.spec.task.multi_label, max_labels=proj.spec.task.parse.max_labels, none_word=proj.spec.task.parse.none)
    first = queue[:review_items]
    notes.append(
        f"d: the review queue of b ({len(queue)} rows: {sum(r['group'] == 'label_issue' for r in queue)} cleanlab suspects, "
        f"{sum(r['group'] == 'teacher_disagreement' for r in queue)} teacher disagreements) was answered for its first {len(first)} rows "
        f"by a simulated reviewer who gives the gold label; {sum(1 for r in first if r['gold'] != r['teacher_label'])} of those "
        f"corrected the teacher, {sum(1 for r in first if r['gold'] == r['teacher_label'])} confirmed it (imported: {imp.added} added, "
        f"{imp.changed} changed, {len(imp.skipped)} skipped)"
    )
    run_variant("d_reviewed", specs["d_reviewed"])
    if removed is not None:
        notes.append(f"b: cleanlab flagged {removed.get('found')} of the cleaned pool; {removed.get('dropped')} removed (at most {specs['b_cleaned'].clean.label_issues.max_share:.0%})")
    result = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "student": student,
        "multi_label": multi,
        "review_items": review_items,
        "variants": rows,
        "notes": notes,
        "seconds": time.perf_counter() - t0,
        "scratch_store": str(scratch / ".graduate"),
    }
    out_dir = root / ".graduate"
    (out_dir / "label_quality.json").write_text(json.dumps(result, indent=2, default=str))
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary["label_quality"] = result
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    return result
