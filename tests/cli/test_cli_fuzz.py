"""Fuzz the commands that read a trained project (status, runs, data recipe, students show,
serve-plan, errors, privacy log, ...) with any argument and option value: each runs, or stops with a
GraduateError (one line through the CLI) or a usage error; never an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from graduate.cli.app import app
from graduate.errors import GraduateError

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=10) | st.sampled_from(
    ["[red]x", "[/]", "1", "-1", "0", "99999999999999999999", "tfidf-logreg", "majority", "nan", "inf", "", " ", "test.balanced", "dedupe", "train*"]
)
numbers = st.sampled_from(["0", "1", "-1", "2", "9223372036854775807", "9223372036854775808", "99999999999999999999", "1e9", "nan", "abc"])


def _commands(project: str) -> st.SearchStrategy[list[str]]:
    def cmd(*parts: object) -> st.SearchStrategy[list[str]]:
        return st.tuples(*(p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts)).map(list)

    return st.one_of(
        cmd("status", project),
        cmd("runs", "list", project, "--last", numbers),
        cmd("runs", "show", project, words),
        cmd("runs", "compare", project, words, words),
        cmd("data", "recipe", project, "--dataset", numbers, "--step", words, "--show", numbers),
        cmd("data", "duplicates", project, "--show", numbers),
        cmd("students", "show", words),
        cmd("privacy", "log", project),
        cmd("serve-plan", project, "--metric", words, "--target", numbers | words, "--student", words),
        cmd("errors", project, "--show", numbers, "--student", words, "--test-set", words),
    )


def test_any_argument_of_a_reading_command_runs_or_is_one_line(trained_copy: Path, tmp_path: Path) -> None:
    # `data recipe --dataset 99999999999999999999` was an internal error (OverflowError from the store).
    runner = CliRunner()

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(args=_commands(str(trained_copy)))
    def check(args: list[str]) -> None:
        res = runner.invoke(app, args)
        assert res.exception is None or isinstance(res.exception, (GraduateError, SystemExit)), (args, repr(res.exception))
        if isinstance(res.exception, GraduateError):
            assert str(res.exception).strip(), args

    check.hypothesis.inner_test(args=["data", "recipe", str(trained_copy), "--dataset", "99999999999999999999", "--step", "x", "--show", "1"])
    check()


def test_a_min_gain_that_is_no_number_of_points_is_a_usage_error(tiny_project: Path) -> None:
    # `graduate curve --min-gain nan` (or a negative gain) was accepted, and the advice then never said stop.
    runner = CliRunner()

    @settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(gain=st.floats(max_value=-1e-9) | st.sampled_from([float("nan"), float("inf")]))
    def check(gain: float) -> None:
        res = runner.invoke(app, ["curve", str(tiny_project / "none"), "--min-gain", repr(gain)])  # refused before the project is read
        assert isinstance(res.exception, GraduateError), (gain, res.output)
        assert str(res.exception) == f"option: --min-gain: give a finite number of at least 0 (got {gain!r})", res.exception

    check()


def test_a_float_option_that_is_nan_or_inf_is_one_line_naming_it(tiny_project: Path) -> None:
    """nan passes a min/max check (it compares false both ways) and inf passes a min: `label --lease-s
    inf`, `predict --cpus-per-actor inf`, `serve --timeout inf`, `monitor --hours nan` ran on with them."""
    runner = CliRunner()
    none = str(tiny_project / "none")  # refused before the project is read
    for args, flag in [
        (["monitor", none, "--hours"], "--hours"),
        (["label", none, "--input", "x.csv", "--ray", "local", "--lease-s"], "--lease-s"),
        (["predict", none, "--input", "x.csv", "--ray", "local", "--cpus-per-actor"], "--cpus-per-actor"),
        (["data", "duplicates", none, "--threshold"], "--threshold"),
        (["serve", none, "--timeout"], "--timeout"),
        (["serve", none, "--canary-share"], "--canary-share"),
        (["promote", none, "--server", "http://127.0.0.1:9", "--timeout"], "--timeout"),
        (["teacher", "serve-local", "--startup-timeout"], "--startup-timeout"),
    ]:
        for value in ("nan", "inf", "-inf"):
            res = runner.invoke(app, [*args, value])
            assert isinstance(res.exception, GraduateError), (args, value, res.output)
            assert str(res.exception).startswith(f"option: {flag}: give a finite number") and str(res.exception).endswith(f"(got {value})"), res.exception


@pytest.mark.parametrize("run", ["", "  ", "ab", "3b9"])
def test_promote_run_too_short_to_name_a_run_is_one_line_naming_the_option(tiny_project: Path, run: str) -> None:
    """`promote --run ''` went to the server, whose 422 named its JSON field ("run_id: String should
    have at least 4 characters"), not the option the user typed."""
    res = CliRunner().invoke(app, ["promote", str(tiny_project / "none"), "--server", "http://127.0.0.1:9", "--run", run])  # refused before the project is read
    assert isinstance(res.exception, GraduateError), res.output
    assert str(res.exception) == f"option: --run: {run!r} is too short to name a run: give at least 4 characters of its id (graduate runs list)", res.exception
    long = "a" * 65
    res = CliRunner().invoke(app, ["promote", str(tiny_project / "none"), "--server", "http://127.0.0.1:9", "--run", long])
    assert str(res.exception) == f"option: --run: {long!r} is longer than a run id: give its id (graduate runs list)", res.exception
