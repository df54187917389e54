"""The checks of graduate.yaml that need the registries above the spec: every student's kind
exists and its params fit the kind's typed model (ensemble members too). ``load_checked_spec`` and
``parse_checked_spec`` are what every command uses to read a spec: nothing runs on a spec that
fails them, and each problem is one line naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graduate.errors import SpecError, StudentError
from graduate.formats import labelset
from graduate.formats.registry import answer_format
from graduate.spec import SPEC_FILENAME, ProjectSpec, load_spec, parse_spec
from graduate.students.registry import STUDENTS, make_student, student_class


def check_students(spec: ProjectSpec, *, path: Path | str | None = None) -> None:
    """Raise one SpecError listing every student whose kind is unknown or whose params are wrong.
    Constructing a student checks its params (cheap: nothing is loaded or trained)."""
    problems = []
    for i, st in enumerate(spec.students):
        if st.kind not in STUDENTS:
            problems.append(SpecError(f"unknown student kind {st.kind!r}; known kinds: {sorted(STUDENTS)}", path=path, field=f"students[{i}].kind"))
            continue
        # set by the project (graduate.pipeline.train.for_task), which replaced a value given here
        for key, source in _FROM_THE_TASK.items():
            # max_labels caps one student's sets where the task caps none
            if key in st.params and not (key == "max_labels" and spec.task.multi_label and spec.task.parse.max_labels is None):
                problems.append(SpecError(f"params.{key} is set by the project from {source}; remove it here", path=path, field=f"students[{i}] ({st.label})"))
        try:
            make_student(st.kind, spec.task.labels, st.params)
        except StudentError as exc:
            problems.append(SpecError(f"students[{i}] ({st.label}): {exc}; see `graduate students show {st.kind}`", path=path))
    if problems:
        raise SpecError.several(problems)


# Student params the project derives from the task; one written in the spec was ignored or overridden.
_FROM_THE_TASK = {"multi_label": "task.kind", "max_labels": "task.parse.max_labels (a multi-label task's answers hold no more)"}


def check_student_models(spec: ProjectSpec, *, path: Path | str | None = None) -> None:
    """What each student's params name on disk (base models, layer counts; ensemble members and
    one-vs-rest bases too), without loading or training: one SpecError listing every problem.
    For ``graduate check``; training checks the same again."""
    problems = []
    for i, st in enumerate(spec.students):
        try:
            make_student(st.kind, spec.task.labels, st.params).check_models()
        except StudentError as exc:
            problems.append(SpecError(f"students[{i}] ({st.label}): {exc}", path=path))
    if problems:
        raise SpecError.several(problems)


def check_task_supported(spec: ProjectSpec, *, path: Path | str | None = None) -> None:
    """A multi-label task trains every kind on label sets (itself, or once per label with
    ``one-vs-rest``: ``graduate.students.registry.for_label_sets``); a single-label task cannot use
    the kinds that exist only for label sets, one line each."""
    if spec.task.multi_label:
        return
    problems = [
        SpecError(f"student kind {st.kind} is for multi-label tasks (task.kind: multi_label)", path=path, field=f"students[{i}].kind")
        for i, st in enumerate(spec.students)
        if st.kind in STUDENTS and student_class(st.kind).multi_label
    ]
    if problems:
        raise SpecError.several(problems)


def load_checked_spec(path: Path | str) -> tuple[ProjectSpec, Path]:
    """``graduate.spec.load_spec`` plus the student checks and the task-kind check."""
    spec, root = load_spec(path)
    p = Path(path)
    where = p if p.is_file() else p / SPEC_FILENAME
    check_students(spec, path=where)
    check_task_supported(spec, path=where)
    check_label_sets_read_back(spec, path=where)
    return spec, root


def parse_checked_spec(raw: dict[str, Any], *, path: Path | str | None = None) -> ProjectSpec:
    """``graduate.spec.parse_spec`` plus the student checks."""
    spec = parse_spec(raw, path=path)
    check_students(spec, path=path)
    check_task_supported(spec, path=path)
    check_label_sets_read_back(spec, path=path)
    return spec


def check_label_sets_read_back(spec: ProjectSpec, *, path: Path | str | None = None) -> None:
    """A multi-label task's answer format must read back what it writes: each label alone, all of
    them (as many as ``parse.max_labels`` allows), and the empty set where ``parse.none`` names it. Otherwise the teacher's answers with that
    label are dropped as unknown words (``n.a.`` lost its dots) or merged into another label (``Care``
    and ``care``), and the server answers what no parser reads. One line naming the set."""
    task = spec.task
    if not task.multi_label:
        return
    fmt = answer_format(task.parse, task.labels)
    most = list(task.labels)[: task.parse.max_labels]  # a set past max_labels is refused by design
    sets = [[lab] for lab in task.labels] + [most] + ([[]] if task.parse.none else [])
    for chosen in sets:
        value = labelset.encode(chosen, task.labels)
        for text in fmt.render(value):
            got = fmt.parse(text)
            if got.label != value:
                back = repr(got.label) if got.label is not None else f"a parse failure ({got.error})"
                what = (
                    f"label {chosen[0]!r}" if len(chosen) == 1 else "the empty set (parse.none)" if not chosen
                    else "all labels together" if len(chosen) == len(task.labels) else f"the first {len(chosen)} labels together (parse.max_labels)"
                )
                raise SpecError(
                    f"{what} is written {text!r} in task.parse's format and reads back as {back}; "
                    "rename the labels (two may not match the same word in any case) or set parse.words / parse.none",
                    path=path,
                    field="task.labels",
                )
