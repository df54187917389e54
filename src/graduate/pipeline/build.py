"""Step 2, build: the training set from the store (graduate.data.build), with the label-issue
detector made here from the student registry (the data layer sits below the students)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from graduate.data.build import Dataset, build_training_set
from graduate.spec import ProjectSpec
from graduate.students.registry import make_student

if TYPE_CHECKING:
    from graduate.pipeline.progress import ProgressFn
    from graduate.pipeline.project import Project


def detector_factory(spec: ProjectSpec) -> Callable[[], Any]:
    """A fresh, untrained label-issue student (clean.label_issues.student and params) per call;
    for a multi-label task, the kind as it trains on label sets (per-label probabilities)."""
    from graduate.pipeline.train import for_task

    li = spec.clean.label_issues
    kind, params = for_task(spec, li.student, dict(li.params))
    return lambda: make_student(kind, spec.task.labels, params)


def build(project: "Project", *, spec: ProjectSpec | None = None, name: str = "train", progress: "ProgressFn | None" = None) -> Dataset:
    """The training set of ``spec`` (default: the project's; a variant spec builds a variant)."""
    spec = spec or project.spec
    return build_training_set(project.engine, spec, name=name, progress=progress, make_detector=detector_factory(spec))
