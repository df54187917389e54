"""Command-line options that override a spec section's fields, checked as the spec checks them."""

from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ValidationError

from graduate.errors import SpecError

Section = TypeVar("Section", bound=BaseModel)


def apply_options(section: Section, update: dict[str, Any], refuse: Callable[[str, str], SpecError]) -> Section:
    """``section`` with ``update`` applied and validated; the first problem becomes the SpecError
    ``refuse(field, message)`` builds, so each command names its own flag."""
    try:
        return type(section).model_validate({**section.model_dump(), **update})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise refuse(str(err["loc"][-1]) if err["loc"] else "", err["msg"].removeprefix("Value error, ")) from None


def number(flag: str, *, above: float | None = None, least: float | None = None, most: float | None = None) -> Callable[[Any], float]:
    """A float option's ``parser``: a finite number within the bounds, else a SpecError naming
    ``flag`` and what it allows. "nan" and "inf" read as floats, and NaN passes a min/max check
    (it compares false both ways): an inf window or timeout, a NaN threshold, would run on."""
    if least is not None and most is not None:
        rule = f"a finite number from {least:g} to {most:g}"
    else:
        low = f"above {above:g}" if above is not None else f"of at least {least:g}" if least is not None else ""
        rule = " ".join(filter(None, ["a finite number", low, "and" if low and most is not None else "", f"at most {most:g}" if most is not None else ""]))

    def parse(value: Any) -> float:
        try:
            got = float(value)
        except (TypeError, ValueError):
            got = math.nan
        if not math.isfinite(got) or (above is not None and got <= above) or (least is not None and got < least) or (most is not None and got > most):
            raise SpecError(f"give {rule} (got {value})", field=flag)
        return got

    return parse


def reviewer_name(value: str | None) -> str | None:
    """A ``--reviewer`` option's ``callback``: a name stored as ``human:NAME`` (``graduate.spec.names``),
    else a SpecError naming the flag."""
    from graduate.spec.names import reviewer_problem

    if value is None:
        return None
    problem = reviewer_problem(value.strip())
    if problem is not None:
        raise SpecError(f"the reviewer's name {problem}", field="--reviewer")
    return value.strip()
