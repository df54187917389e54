"""graduate's errors cross process boundaries (a Ray worker raises, the driver reports): each one
comes back from pickle as the same class, with the same one-line message and fields."""

from __future__ import annotations

import errno
import pickle

import pytest

from graduate import errors as E


def _instances() -> list[E.GraduateError]:
    return [
        E.SpecError("bad field", path="graduate.yaml", field="teacher.model"),
        E.InputDataError("not UTF-8 (byte 0xe9)", path="data.csv", line=3, column="text"),
        E.StoreError("cannot open", url="sqlite:///x.db"),
        E.StoreLockedError(url="sqlite:///x.db", where="/p/.graduate/store.db"),
        E.TeacherError("gave up", attempts=3),
        E.TeacherTransientError("503", status=503, retry_after_s=2.0, attempts=1),
        E.BudgetExceededError(spent=1.5, budget=2.0, needed=0.75),
        E.TeacherAuthError(api_key_env="OPENAI_API_KEY", base_url="http://127.0.0.1:1/v1", detail="401 bad key"),
        E.TeacherAuthError(api_key_env="OPENAI_API_KEY", base_url="http://127.0.0.1:1/v1", detail="", missing=True),
        E.TeacherQuotaError(api_key_env="OPENAI_API_KEY", base_url="http://127.0.0.1:1/v1", detail="insufficient_quota"),
        E.BatchError("upload failed", batch="batch_1"),
        E.StudentError("no data", kind="encoder"),
        E.TestSetChangedError(name="test", version=1, frozen_hash="a" * 64, frozen_size=3, current_hash="b" * 64, current_size=4, next_version=2),
        E.ListenError("127.0.0.1", 80, OSError(errno.EACCES, "Permission denied")),
        E.NotReadyError("run graduate build first"),
    ]


@pytest.mark.parametrize("exc", _instances(), ids=lambda e: type(e).__name__)
def test_every_error_comes_back_from_pickle_as_itself(exc: E.GraduateError) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc) and back.args == exc.args
    def shown(fields: dict) -> dict:  # errors a field holds (SpecError.problems), by what they say
        return {k: [(type(e), str(e)) for e in v] if isinstance(v, list) else v for k, v in fields.items()}

    assert shown(vars(back)) == shown(vars(exc))
    if isinstance(exc, E.SpecError):
        assert back.problems[0] is back  # the copy lists itself, as the original does


def test_several_spec_problems_come_back_one_per_line() -> None:
    many = E.SpecError.several([E.SpecError("a", field="x"), E.SpecError("b", field="y")])
    back = pickle.loads(pickle.dumps(many))
    assert str(back) == str(many) == "spec: x: a\nspec: y: b" and [str(p) for p in back.problems] == ["spec: x: a", "spec: y: b"]


def test_every_error_class_is_covered_here() -> None:
    def subclasses(cls: type) -> set[type]:
        return {cls} | {s for c in cls.__subclasses__() for s in subclasses(c)}

    graduates = {c for c in subclasses(E.GraduateError) if c.__module__ == E.__name__}
    tested = {type(e) for e in _instances()}
    plain = {c for c in graduates - tested if c.__init__ is E.GraduateError.__init__}  # Exception's own init: pickles already
    assert graduates - tested - plain == set()
