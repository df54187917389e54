"""graduate: distil a closed LLM's text classification into a small student you own.

Two tiers: pure functions over records and arrays (``graduate.data``, ``graduate.evaluate``,
``graduate.teacher.parse``) and the ``Project`` facade that composes them.
"""

__version__ = "0.1.0"

from graduate.errors import GraduateError  # noqa: E402
from graduate.project import Project  # noqa: E402
from graduate.spec import ProjectSpec, load_spec  # noqa: E402

__all__ = ["GraduateError", "Project", "ProjectSpec", "load_spec", "__version__"]
