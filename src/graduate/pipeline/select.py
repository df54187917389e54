"""Which trained student a command uses: the best of graduate.yaml's students, each spec student's
newest evaluated run, or one named by the user. Learning-curve shares, ensemble members and
ladder rungs the spec does not list never compete (a lucky 75% share would otherwise win).

The best is picked by ``pick``: the student ``model_selection.student`` names, else the highest
score on the validation split carved from the training set (ties: the first listed, the smaller),
never a test set's figure: the test sets only report. Scores compare only on the same items:
students scored on another split, or on none (e.g. trained alone by `graduate train`), are named
and left out of the comparison.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graduate.errors import NotReadyError
from graduate.spec import ProjectSpec
from graduate.store.runs import RunRow, get_runs
from graduate.students.base import Student
from graduate.students.registry import load_student

if TYPE_CHECKING:
    from graduate.pipeline.project import Project


def _loadable(r: RunRow) -> bool:
    return bool(r.artifact_dir) and (Path(r.artifact_dir) / "kind.json").exists()  # type: ignore[arg-type]


def _evaluated(r: RunRow) -> bool:
    return "test" in (r.metrics or {})


def pick(spec: ProjectSpec, validation: dict[str, dict[str, Any] | None]) -> tuple[str | None, str]:
    """The best of the students given (name -> its validation score, None without one), and why."""
    names = [s.label for s in spec.students if s.label in validation]
    if not names:
        return None, "no trained student"
    pinned = spec.model_selection.student
    if pinned in names:
        return pinned, "named in model_selection.student"
    if len(names) == 1:
        return names[0], "the only student"
    scored = [n for n in names if (validation[n] or {}).get("score") is not None]
    if not scored:
        return names[-1], "the last listed: no validation split was held out (model_selection), so no score picks"
    scored, apart = _one_split(scored, validation)
    best = max(scored, key=lambda n: (validation[n]["score"], -names.index(n)))  # type: ignore[index]
    v = validation[best] or {}
    why = f"highest {v.get('metric')} on the validation split ({v['score']:.3f} on {v.get('n')} held-out training items)"
    unscored = [n for n in names if (validation[n] or {}).get("score") is None]
    if apart or unscored:
        why += "; not compared: " + "; ".join(
            part for part in (f"{', '.join(apart)} scored on another split" if apart else "", f"{', '.join(unscored)} not scored on one" if unscored else "") if part
        )
        why += " (`graduate run` trains and scores every student on one split)"
    return best, why


def _one_split(scored: list[str], validation: dict[str, dict[str, Any] | None]) -> tuple[list[str], list[str]]:
    """Scores compare only on the same items: keep the students scored on the split most of them
    were scored on (ties: the first listed student's), and name the others."""
    split_of = {n: (validation[n] or {}).get("dataset_hash") for n in scored}
    count = Counter(split_of.values())
    top = max(count.values())
    keep = next(split_of[n] for n in scored if count[split_of[n]] == top)
    return [n for n in scored if split_of[n] == keep], [n for n in scored if split_of[n] != keep]


def best_student(project: "Project") -> tuple[Student, RunRow]:
    """The best of graduate.yaml's students: for each, its newest evaluated run, and of those the
    one ``pick`` chooses (validation score, or the student ``model_selection`` names)."""
    names = {s.label for s in project.spec.students}
    evaluated = [r for r in get_runs(project.engine, root=project.root, kind="train", status="finished") if _evaluated(r) and _loadable(r)]
    newest: dict[str, RunRow] = {}
    for r in evaluated:  # in start order: the last one per name wins
        if r.name in names:
            newest[r.name] = r
    if not newest:
        others = sorted({r.name for r in evaluated if r.name not in names})
        hint = f"; trained outside students: {others} (add one to students: in graduate.yaml to use it)" if others else ""
        raise NotReadyError(f"no trained student of graduate.yaml's students {sorted(names)}; run `graduate run {project.root}` first{hint}")
    name, _ = pick(project.spec, {n: (r.metrics or {}).get("validation") for n, r in newest.items()})
    best = newest[name]  # type: ignore[index]
    return load_student(Path(best.artifact_dir)), best  # type: ignore[arg-type]


def trained_students(project: "Project") -> dict[str, tuple[Student, RunRow]]:
    """Each spec student's newest finished training run that was evaluated (it has test figures),
    loaded from the store."""
    runs = get_runs(project.engine, root=project.root, kind="train", status="finished")
    out: dict[str, tuple[Student, RunRow]] = {}
    for sspec in project.spec.students:
        mine = [r for r in runs if r.name == sspec.label and _loadable(r)]
        mine = [r for r in mine if _evaluated(r)] or mine
        if not mine:
            raise NotReadyError(f"student {sspec.label!r} is not trained yet; run `graduate run {project.root}` first")
        run = mine[-1]
        trained_as = next((s for s in run.spec.get("students", []) if (s.get("name") or s.get("kind")) == sspec.label), None)
        if trained_as is not None and (trained_as.get("kind"), trained_as.get("params") or {}) != (sspec.kind, sspec.params):
            raise NotReadyError(
                f"student {sspec.label!r} changed in graduate.yaml since it was trained (run {run.id[:8]}); run `graduate run {project.root}` to retrain it"
            )
        out[sspec.label] = (load_student(Path(run.artifact_dir)), run)  # type: ignore[arg-type]
    return out


def select_student(project: "Project", name: str | None) -> tuple[Student, RunRow]:
    """The named student's newest evaluated run (else its newest run), or the best student overall."""
    if name is None:
        return best_student(project)
    finished = get_runs(project.engine, root=project.root, kind="train", status="finished")
    runs = [r for r in finished if r.name == name and _loadable(r)]
    if not runs:
        known = sorted({r.name for r in finished})
        raise NotReadyError(f"no trained student named {name!r} (serve.student); trained: {known or 'none, run `graduate run` first'}")
    run = max(runs, key=lambda r: (_evaluated(r), r.started_at))
    return load_student(Path(run.artifact_dir)), run  # type: ignore[arg-type]
