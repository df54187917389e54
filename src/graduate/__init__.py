"""graduate: distil a closed LLM's text classification into a small student you own.

Layers (enforced by .importlinter): cli -> experiments -> pipeline -> evaluate | serve | monitor ->
students | data | teacher -> formats | models -> store | spec -> errors. The pipeline's steps
compose the pure functions below it; ``Project`` is their shared context.

``Project`` is imported on first use, so importing a lower layer (``graduate.store``) does not
load every other one.
"""

from typing import Any

__version__ = "0.1.0"

from graduate.errors import GraduateError  # noqa: E402

__all__ = ["GraduateError", "Project", "ProjectSpec", "load_spec", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Project":
        from graduate.pipeline.project import Project

        return Project
    if name in ("ProjectSpec", "load_spec"):
        from graduate import spec

        return getattr(spec, name)
    raise AttributeError(f"module 'graduate' has no attribute {name!r}")
