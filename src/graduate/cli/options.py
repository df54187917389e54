"""Command-line options that override a spec section's fields, checked as the spec checks them."""

from __future__ import annotations

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
