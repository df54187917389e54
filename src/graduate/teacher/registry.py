"""Teacher backends by spec ``kind``."""

from __future__ import annotations

from typing import Callable

from graduate.spec import TeacherSpec
from graduate.teacher.base import TeacherBackend


def _openai(spec: TeacherSpec) -> TeacherBackend:
    from graduate.teacher.openai_compat import OpenAICompatTeacher

    return OpenAICompatTeacher(spec)


def _local(spec: TeacherSpec) -> TeacherBackend:
    from graduate.teacher.local import LocalTeacher

    return LocalTeacher(spec)


TEACHERS: dict[str, Callable[[TeacherSpec], TeacherBackend]] = {
    "openai": _openai,
    "local": _local,
}


def make_teacher(spec: TeacherSpec) -> TeacherBackend:
    return TEACHERS[spec.kind](spec)
