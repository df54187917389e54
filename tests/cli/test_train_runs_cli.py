"""graduate train / runs list|show|compare / --mlflow, end to end through the CLI."""

import re

import pytest

from typer.testing import CliRunner

from graduate.cli.app import app
from graduate.errors import NotReadyError

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    # Tables fold long keys at the default 80 columns; a wide console keeps each row on one line.
    from graduate.cli import console

    monkeypatch.setattr(console.console, "_width", 220)


def _ok(args):
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_train_runs_compare_and_mlflow(tiny_project, tmp_path):
    out = _ok(["train", str(tiny_project), "--student", "majority"])
    # One student is not a ladder (issue 17): no "student ladder" title, no "trained every rung".
    assert "student majority" in out and "student ladder" not in out and "every rung" not in out
    assert "no gates in graduate.yaml: judged" in " ".join(out.split())
    _ok(["train", str(tiny_project), "--student", "tfidf-logreg"])
    listing = _ok(["runs", "list", str(tiny_project), "--kind", "train"])
    ids = re.findall(r"^│ ([0-9a-f]{8}) ", listing, flags=re.M)
    assert len(ids) == 2
    shown = _ok(["runs", "show", str(tiny_project), ids[1]])
    assert "student.kind" in shown and "tfidf-logreg" in shown and "test.test.balanced.accuracy" in shown
    diff = _ok(["runs", "compare", str(tiny_project), ids[0], ids[1]])
    assert re.search(r"config.*student.kind.*majority.*tfidf-logreg", diff)
    assert re.search(r"metrics.*test.test.balanced.accuracy.*0\.4878.*0\.6341", diff)
    assert "dataset_hash" not in diff  # same data: not a difference
    cost = [c.strip() for c in next(line for line in diff.splitlines() if "cost_per_1k_usd" in line).split("│")]
    assert float(cost[4]) > 0 and cost[4] != "0.0000"  # a cost per item is tiny: shown in significant digits
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = _ok(["train", str(tiny_project), "--student", "tfidf-logreg", "--mlflow", uri])
    assert "logged 2 runs to MLflow" in out  # the (reused) train run and the evaluate run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("toxicity")
    logged = client.search_runs([exp.experiment_id])
    train = [r for r in logged if r.data.tags.get("graduate.kind") == "train"]
    assert len(train) == 1 and train[0].data.params["student.kind"] == "tfidf-logreg"
    assert train[0].data.metrics["test.test.balanced.accuracy"] > 0.5
    artifacts = {a.path for a in client.list_artifacts(train[0].info.run_id)}
    assert {"run.json", "student"} <= artifacts
    out = _ok(["runs", "list", str(tiny_project), "--mlflow", uri])
    assert "logged 5 runs" in out  # 2 train runs + 3 evaluate runs (one per `graduate train`)
    everything = client.search_runs([exp.experiment_id])
    tags = [r.data.tags["graduate.run_id"] for r in everything]
    assert len(everything) == 5 and len(set(tags)) == 5  # the 2 logged before were not logged twice
    # A name several runs have resolves to the newest, and says so; a run against itself is refused.
    spec = tiny_project / "graduate.yaml"
    spec.write_text(spec.read_text().replace("\nseed: 0\n", "\nseed: 7\n"))  # another seed: a new majority run
    _ok(["train", str(tiny_project), "--student", "majority"])
    spec.write_text(spec.read_text().replace("\nseed: 7\n", "\nseed: 0\n"))
    out = " ".join(_ok(["runs", "compare", str(tiny_project), "majority", ids[1]]).split())
    assert "'majority' is the newest of 2 runs with that name" in out and "(give an id prefix)" in out
    out = " ".join(_ok(["runs", "show", str(tiny_project), "majority"]).split())
    assert "'majority' is the newest of 2 runs with that name" in out and "(give an id prefix)" in out
    same = runner.invoke(app, ["runs", "compare", str(tiny_project), ids[1], "tfidf-logreg"])
    assert isinstance(same.exception, NotReadyError) and "are the same run" in str(same.exception)


def test_an_unreachable_or_refused_mlflow_uri_is_one_line_after_the_table(tiny_project, tmp_path):
    import socket

    _ok(["train", str(tiny_project), "--student", "majority"])
    with socket.socket() as s:  # a port nothing listens on (held, so that no other process takes it meanwhile)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        result = runner.invoke(app, ["runs", "list", str(tiny_project), "--mlflow", f"http://127.0.0.1:{port}"])
    assert isinstance(result.exception, NotReadyError) and "2 runs" in result.output  # the table first
    assert f"cannot reach MLflow at 'http://127.0.0.1:{port}'" in str(result.exception) and "sqlite:///mlflow.db" in str(result.exception)
    # MLflow 3 refuses a plain folder (its file store is in maintenance mode): its reason, on one line
    result = runner.invoke(app, ["runs", "list", str(tiny_project), "--mlflow", str(tmp_path / "mlruns")])
    if result.exception is not None:  # MLflow 2 still takes it
        assert isinstance(result.exception, NotReadyError), result.exception
        assert f"MLflow at '{tmp_path / 'mlruns'}' refused: " in str(result.exception) and "\n" not in str(result.exception)


def test_mlflow_takes_any_test_set_name_and_logs_a_half_logged_run_again(tiny_project, tmp_path):
    """MLflow refuses '(' in a metric name, and a log stopped midway leaves a RUNNING run behind:
    the names are made ones it takes, and the half-logged run is logged again, whole."""
    import yaml
    from mlflow.tracking import MlflowClient

    from graduate.pipeline.project import Project
    from graduate.store.runs import get_runs

    spec_path = tiny_project / "graduate.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["test_sets"][0]["name"] = "test.balanced (2020)"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    _ok(["train", str(tiny_project), "--student", "majority"])
    proj = Project.load(tiny_project)
    (train,) = get_runs(proj.engine, kind="train")
    proj.engine.dispose()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment("toxicity")
    client.create_run(exp_id, tags={"graduate.run_id": train.id})  # what a log killed after create_run leaves

    out = _ok(["runs", "list", str(tiny_project), "--mlflow", uri])
    assert "logged 2 runs" in out
    (logged,) = client.search_runs([exp_id], filter_string=f"tags.`graduate.run_id` = '{train.id}'")
    assert logged.info.status == "FINISHED" and logged.data.params["student.kind"] == "majority"
    assert logged.data.metrics["test.test.balanced _2020_.accuracy"] == pytest.approx(0.4878, abs=1e-4)


def test_an_unreachable_mlflow_uri_stops_train_and_curve_before_they_train(tiny_project):
    import socket

    from graduate.pipeline.project import Project
    from graduate.store.runs import get_runs

    with socket.socket() as s:  # a port nothing listens on (held, so that no other process takes it meanwhile)
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
        for args in (["train", str(tiny_project), "--student", "majority"], ["curve", str(tiny_project), "--fractions", "50,100", "--seeds", "1"]):
            result = runner.invoke(app, [*args, "--mlflow", uri])
            assert isinstance(result.exception, NotReadyError) and f"cannot reach MLflow at '{uri}'" in str(result.exception)
    assert get_runs(Project.load(tiny_project).engine) == []  # nothing trained only to fail at the end


def test_train_needs_ladder_or_student(tiny_project):
    result = runner.invoke(app, ["train", str(tiny_project)])
    assert result.exit_code != 0
    assert "exactly one of --ladder or --student" in str(result.exception or result.output)


def test_runs_list_refuses_a_kind_no_run_has(tiny_project):
    from graduate.errors import SpecError

    result = runner.invoke(app, ["runs", "list", str(tiny_project), "--kind", "trian"])
    assert isinstance(result.exception, SpecError) and "run kind 'trian' is not train or evaluate" in str(result.exception)


def test_compare_unknown_run_is_clear(tiny_project):
    _ok(["train", str(tiny_project), "--student", "majority"])
    result = runner.invoke(app, ["runs", "show", str(tiny_project), "zzzz"])
    assert "no run 'zzzz'" in str(result.exception)


def test_curve_prints_a_table_and_one_line_of_advice(tiny_project):
    out = _ok(["curve", str(tiny_project), "--fractions", "50,75,100", "--seeds", "1", "--more", "1000"])
    assert re.search(r"│\s+50%\s+│\s+60\s+│", out) and re.search(r"│\s+100%\s+│\s+120\s+│", out)
    assert re.search(r"labelling 1,000 more items is expected to add -?\d+\.\d\d points and cost \$\d+\.\d\d|stop labelling: |cannot say", out)
    assert (tiny_project / ".graduate" / "curve-tfidf-logreg.png").exists()
    bad = runner.invoke(app, ["curve", str(tiny_project), "--fractions", "1,100"])
    assert bad.exit_code != 0 and "too few rows for fraction 0.01" in str(bad.exception) and "1% of" in str(bad.exception)
    # no percentages (an internal error before), or a share typed as a percentage above 100
    for fractions, message in [("", "no percentages given"), (" , ", "no percentages given"), ("50,150", "must be above 0 and at most 100, got 150"), ("0,50", "got 0")]:
        bad = runner.invoke(app, ["curve", str(tiny_project), "--fractions", fractions])
        assert bad.exit_code != 0 and message in str(bad.exception), (fractions, bad.exception)


def test_students_list_and_show():
    listing = _ok(["students", "list"])
    kinds = re.findall(r"^│ ([a-z-]+) +│", listing, flags=re.M)
    assert kinds == ["majority", "tfidf-logreg", "embed-logreg", "encoder", "ensemble", "lora-llm"]  # ladder order
    assert "learning_rate" in listing and "member_defaults" not in listing
    shown = _ok(["students", "show", "ensemble"])
    assert '"use_weights": false' in shown and "Soft voting" in shown
    encoder = " ".join(_ok(["students", "show", "encoder"]).split())  # typed params: type, default and meaning
    assert "soft_weight │ float │ 0.5 │ With the teacher's distributions" in encoder and "│ precision │ Literal['auto'," in encoder
    bad = runner.invoke(app, ["students", "show", "bert"])
    assert bad.exit_code != 0 and "unknown kind; known kinds" in str(bad.exception)  # main() prints it on one line
