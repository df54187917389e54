"""graduate: distil a closed LLM's text classification into a small student you own.

Two tiers: pure functions over records and arrays (``graduate.data``, ``graduate.evaluate``,
``graduate.teacher.parse``) and the ``Project`` facade that composes them.

The facade is imported on first use, so importing a lower layer (``graduate.store``) does not
load every other one.
"""

from typing import Any

__version__ = "0.1.0"

from graduate.errors import GraduateError  # noqa: E402

__all__ = ["GraduateError", "Project", "ProjectSpec", "load_spec", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Project":
        from graduate.project import Project

        return Project
    if name in ("ProjectSpec", "load_spec"):
        from graduate import spec

        return getattr(spec, name)
    raise AttributeError(f"module 'graduate' has no attribute {name!r}")
