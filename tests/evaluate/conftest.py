"""Fixtures for the evaluation tests: the tiny project with the bias pair and gates, run once."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_project import add_evaluation, copy_tiny


@pytest.fixture(scope="session")
def evaluated_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Run once per session (read-only for the tests that use it): the project and its summary."""
    from graduate import Project

    project = add_evaluation(copy_tiny(tmp_path_factory.mktemp("evaluated") / "tiny"))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GRADUATE_STORE_URL", raising=False)
        proj = Project.load(project)
        summary = proj.run()
        proj.engine.dispose()
    return project, summary
