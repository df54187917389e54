"""Step 3, train: one student as a tracked run. A finished run with the same fingerprint (kind,
params, dataset content, code version, seed, labels, soft labels, rationales) is reused, not
retrained; an ensemble's members are each their own (reusable) run."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graduate.data.build import Dataset
from graduate.spec import ProjectSpec, StudentSpec
from graduate.store.runs import code_version, fail_run, finish_run, fingerprint, get_runs, relative_artifact_dir, start_run, stored_spec
from graduate.errors import StudentError
from graduate.students.base import Student
from graduate.students.registry import for_label_sets, load_student, make_student, save_student, student_class

from graduate.pipeline.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from graduate.pipeline.project import Project


@dataclass
class TrainResult:
    name: str
    run_id: str
    student: Student
    directory: Path
    fit_seconds: float
    reused: bool


def train(
    project: "Project", student_spec: StudentSpec, dataset: Dataset, *, seed: int | None = None, progress: ProgressFn = no_progress
) -> TrainResult:
    """Train one student as a tracked run; an identical finished run is reused, not retrained.

    ``seed`` overrides the spec's (learning curves train several); ``progress`` gets the
    optimisation steps of students that report them (encoder, lora-llm)."""
    spec = project.spec
    seed = spec.seed if seed is None else seed
    kind, params = for_task(spec, student_spec.kind, {**student_class(student_spec.kind).defaults_from_spec(spec), **student_spec.params})
    cls = student_class(kind)
    soft = dataset.soft_labels if cls.soft_labels else None
    # The teacher's reasons, for students that learn them (lora-llm with rationale_weight > 0).
    reasons = dataset.rationales if cls.wants_rationales(params) else None
    fp = fingerprint(
        kind, params, dataset.content_hash, code_version(), seed, spec.task.labels, soft is not None,
        *([reasons] if reasons is not None else []),
    )
    for prior in reversed(get_runs(project.engine, root=project.root, kind="train", status="finished", fingerprint=fp)):
        directory = Path(prior.artifact_dir or "")
        if (directory / "kind.json").exists():
            try:
                reused = load_student(directory)
            except StudentError:  # its files were damaged since (half copied, edited): trained again below
                continue
            return TrainResult(student_spec.label, prior.id, reused, directory, float((prior.metrics or {}).get("fit_seconds", 0.0)), True)
    resolved = stored_spec(json.loads(spec.model_dump_json()))
    run_id = start_run(project.engine, kind="train", name=student_spec.label, spec=resolved, seed=seed, dataset_hash=dataset.content_hash, fingerprint=fp)
    directory = project.workdir / "runs" / run_id / "student"
    try:
        if "seed" in cls.DEFAULTS:
            params.setdefault("seed", seed)
        members: list[dict[str, Any]] | None = None
        if cls.is_ensemble:  # each member is its own (reusable) run
            student, fit_seconds, members = _train_members(project, cls, student_spec, params, dataset, seed, progress)
        else:
            student = make_student(kind, spec.task.labels, params)
            # Every kind takes the callback; the ones that train in steps call it.
            student.on_progress = lambda done, total: progress(f"train {student_spec.label}", done, total)
            extra: dict[str, Any] = {"soft_labels": soft_matrix(soft, spec.task.labels)} if soft is not None else {}
            if reasons is not None:
                extra["rationales"] = reasons
            t0 = time.perf_counter()
            student.fit(dataset.texts, dataset.labels, sample_weight=dataset.weights or None, **extra)
            fit_seconds = time.perf_counter() - t0
        save_student(student, directory)
        size_bytes = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
        record = {
            "run_id": run_id,
            "student": student_spec.model_dump(),
            "spec": resolved,
            "dataset": {"name": dataset.name, "hash": dataset.content_hash, "size": len(dataset.examples), "recipe": dataset.recipe},
            "code_version": code_version(),
            "seed": seed,
            "params": params,
            "soft_labels": soft is not None,
            "rationales": sum(r is not None for r in reasons) if reasons is not None else 0,
            "fit_seconds": fit_seconds,
            "size_bytes": size_bytes,
            **({"members": members} if members is not None else {}),
        }
        (directory.parent / "run.json").write_text(json.dumps(record, indent=2, default=str))
    except BaseException as exc:
        fail_run(project.engine, run_id, f"{type(exc).__name__}: {exc}")
        raise
    finish_run(
        project.engine,
        run_id,
        metrics={"fit_seconds": fit_seconds, "train_size": len(dataset.examples), "size_bytes": size_bytes, "kind": student_spec.kind, "params": params},
        artifact_dir=relative_artifact_dir(directory, project.root),
    )
    return TrainResult(student_spec.label, run_id, student, directory, fit_seconds, False)


def for_task(spec: ProjectSpec, kind: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The kind and params that train ``kind`` for the spec's task: for a multi-label task, a kind
    that takes label sets itself (tfidf-logreg, embed-logreg, the encoder, the ensemble) gets
    ``multi_label: true``, any other is trained once per label (``one-vs-rest``); each tunes its
    thresholds on a validation share (``graduate.students.registry.for_label_sets``), and keeps at
    most ``task.parse.max_labels`` labels in a set."""
    if spec.task.multi_label:
        kind, params = for_label_sets(kind, params)
        if spec.task.parse.max_labels is not None:  # its answers may hold no more than the teacher's may
            params = {**params, "max_labels": spec.task.parse.max_labels}
    return kind, params


def _train_members(
    project: "Project", cls: type, student_spec: StudentSpec, params: dict[str, Any], dataset: Dataset, seed: int, progress: ProgressFn
) -> tuple[Student, float, list[dict[str, Any]]]:
    """Train (or reuse) each member of an ensemble as its own run, then assemble them. The
    ensemble's training time is its members' (a reused member counts what it took then)."""
    results = []
    for i, m in enumerate(cls.member_specs(params)):  # type: ignore[attr-defined]
        member_data = dataset if m["use_weights"] else dataset.without_weights()
        member = StudentSpec(kind=m["kind"], name=f"{student_spec.label}.{i}.{m['kind']}", params=m["params"])
        results.append(train(project, member, member_data, seed=params.get("seed", seed), progress=progress))
    student = cls.from_members(project.spec.task.labels, params, [r.student for r in results])  # type: ignore[attr-defined]
    runs = [{"run_id": r.run_id, "kind": r.student.kind, "reused": r.reused, "fit_seconds": r.fit_seconds} for r in results]
    return student, sum(r.fit_seconds for r in results), runs


def soft_matrix(soft: list[dict[str, float] | None], labels: list[str]) -> np.ndarray:
    """Teacher distributions as an (n, labels) array; rows without one are NaN (the student uses the hard label)."""
    return np.array([[float(d.get(lab, 0.0)) for lab in labels] if d else [np.nan] * len(labels) for d in soft])
