"""Optional dependencies of the data-quality steps, imported on use with a clear message."""

from __future__ import annotations

import importlib
from types import ModuleType

from graduate.errors import NotReadyError


def require(module: str, extra: str = "clean") -> ModuleType:
    """Import ``module`` or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise NotReadyError(f"{module.split('.')[0]} is not installed; run `pip install 'graduate[{extra}]'`") from None
