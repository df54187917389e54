"""What the server and the proxy need of a project, as a protocol: the spec, the store, a folder
to spill into, and which student to serve. ``graduate.pipeline.project.Project`` provides it (the
pipeline sits above the server, so the server names the shape, not the class)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine

from graduate.privacy import Redactor
from graduate.spec import ProjectSpec
from graduate.store.runs import RunRow
from graduate.students.base import Student


class ServedProject(Protocol):
    spec: ProjectSpec
    root: Path
    engine: Engine

    @property
    def workdir(self) -> Path: ...

    @property
    def redactor(self) -> Redactor | None:
        """privacy.redact's redaction of what is stored, or None when it is off."""
        ...

    @property
    def input_redactor(self) -> Redactor | None:
        """privacy.redact_teacher_input's redaction of what the teacher is sent, or None when it is off."""
        ...

    def select_student(self, name: str | None) -> tuple[Student, RunRow]:
        """The best student (``name`` None), or the newest run of the student ``name``."""
        ...
