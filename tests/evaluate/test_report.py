"""The report's optional sections: the teacher audit and the learning curve render from the files
their commands write, and say "not run yet" with the command otherwise."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graduate import Project
from graduate.evaluate.report import build_context, render_report


def test_audit_and_curve_sections_render_when_their_results_exist(evaluated_project, tmp_path):
    project, _ = evaluated_project
    proj = Project.load(project)
    assessment = proj.latest_assessment()
    errors = proj.error_analysis(assessment=assessment)

    before = render_report(build_context(proj.spec, tmp_path, proj.engine, assessment, None, errors))
    assert 'id="audit-not-run"' in before and 'id="curve-not-run"' in before

    work = tmp_path / ".graduate"
    work.mkdir()
    (work / "audit.json").write_text(
        json.dumps(
            {  # the shape `graduate teacher audit` writes (graduate.experiments.audit)
                "configs": [
                    {"name": "gpt-4/simple", "kind": "config", "n": 1, "mean_accuracy": 0.8875, "sets": {"test.balanced": {"accuracy": 0.8875, "fpr": 0.065}}, "flags": []},
                    {
                        "name": "gpt-4/cot", "kind": "config", "n": 1, "mean_accuracy": 0.881, "sets": {"test.balanced": {"accuracy": 0.881, "fpr": 0.21}},
                        "flags": [{"flag": "high_fpr", "set": "test.balanced", "message": "high false-positive rate on test.balanced"}],
                    },
                ],
                "recommended": {"name": "gpt-4/simple", "ceiling": {"test.balanced": 0.8875}, "reason": "highest mean accuracy"},
                "notes": ["cot flags too many clean comments"],
            }
        )
    )
    (work / "curve-tfidf-logreg.json").write_text(
        json.dumps(
            {
                "kind": "tfidf-logreg",
                "metric": "accuracy",
                "test_set": "test.balanced",
                "points": [{"fraction": 0.5, "size": 60, "mean": 0.58, "std": 0.03}, {"fraction": 1.0, "size": 120, "mean": 0.63, "std": 0.02}],
                "advice": {"text": "labelling 120 more items is expected to add 2.10 points and cost $0.19"},
                "teacher_score": 0.83,
            }
        )
    )
    after = render_report(build_context(proj.spec, tmp_path, proj.engine, assessment, None, errors))
    assert 'id="audit-not-run"' not in after and 'id="curve-not-run"' not in after
    assert "Recommended configuration: <strong>gpt-4/simple</strong>; its agreement with gold: test.balanced 0.887 (a reference, not a ceiling: students can exceed it)" in after
    assert "test.balanced FPR" in after and "0.210" in after and "high false-positive rate on test.balanced" in after
    assert "cot flags too many clean comments" in after
    assert "tfidf-logreg on test.balanced" in after and "labelling 120 more items is expected to add 2.10 points" in after
    assert after.count('src="data:image/svg+xml;base64,') == before.count('src="data:image/svg+xml;base64,') + 1
    assert "http://" not in after and "https://" not in after


def test_the_lineage_table_shows_each_producers_item_count(trained_copy):
    # `{{ p.items }}` found dict.items before the key: the cell read "<built-in method items ...>".
    import re

    proj = Project.load(trained_copy)
    summary = json.loads((trained_copy / ".graduate" / "summary.json").read_text())
    html = proj.report().read_text(encoding="utf-8")
    assert "built-in method" not in html
    labels = summary["dataset"]["recipe"]["provenance"]["labels"]
    assert labels
    for p in labels:
        assert re.search(rf"<td>{re.escape(p['producer'])}</td><td>{p['items']:,}</td>", html), p


def test_a_report_path_that_cannot_be_a_file_is_one_error_and_leaves_nothing(trained_copy, tmp_path):
    import pytest

    from graduate.errors import InputDataError

    proj = Project.load(trained_copy)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputDataError, match="is a folder; give a file name"):
        proj.report(out)
    (out / "afile").write_text("x")
    with pytest.raises(InputDataError, match="afile is a file, not a folder"):
        proj.report(out / "afile" / "r.html")
    assert sorted(p.name for p in out.iterdir()) == ["afile"] and not list(tmp_path.glob("*.html.tmp"))


def test_errors_and_report_refuse_a_test_set_whose_gold_changed_since_the_evaluation(trained_copy):
    """The stored predictions were scored against the old gold: pairing them with the new would
    count items as right or wrong that the evaluation's figures counted otherwise."""
    import csv

    import pytest

    from graduate.errors import NotReadyError

    path = trained_copy / "comments.csv"
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    flipped = next(r for r in rows if "test.balanced" in r["subsets"])
    flipped["is_bad"] = "1" if flipped["is_bad"] == "0" else "0"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    proj = Project.load(trained_copy)
    proj.error_analysis()  # as evaluated: fine
    proj.load_data()  # the new gold is stored (a `graduate run` does this, then refuses the changed set)
    with pytest.raises(NotReadyError, match=r"test set 'test.balanced' changed since the newest evaluation .*graduate evaluate"):
        proj.error_analysis()
    with pytest.raises(NotReadyError, match="changed since the newest evaluation"):
        proj.report()


def test_errors_out_on_a_file_is_one_error_naming_it(trained_copy):
    import pytest

    from graduate.errors import InputDataError

    analysis = Project.load(trained_copy).error_analysis()
    data = trained_copy / "comments.csv"
    with pytest.raises(InputDataError, match=r"comments.csv: is a file, not a folder; give a folder for the review CSVs"):
        analysis.export(data)
    with pytest.raises(InputDataError, match=r"comments.csv/queue: .*comments.csv is a file, not a folder"):
        analysis.export(data / "queue")
    assert data.read_text(encoding="utf-8").startswith("id,")  # left as it was


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
MONITOR_KEYS = ["generated_at", "window", "ok", "traffic", "routing", "agreement", "labels", "drift", "checks"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parts=st.dictionaries(st.sampled_from(MONITOR_KEYS), JSON, max_size=6),
    length=st.dictionaries(st.sampled_from(["bin_edges", "reference_share", "current_share"]), JSON, max_size=3),
    bucket=st.dictionaries(st.sampled_from(["items", "compared", "agreement", "teacher_share", "start"]), JSON, max_size=5),
)
def test_a_monitor_json_of_another_shape_leaves_its_parts_out_instead_of_crashing_the_report(evaluated_project, tmp_path_factory, parts, length, bucket):
    # A monitor.json edited by hand (or of another version) was an internal error in `graduate report`
    # wherever a part was not the shape `graduate monitor` writes ("drift": "x", "window": 1, ...).
    project, _ = evaluated_project
    proj = Project.load(project)
    assessment = proj.latest_assessment()
    root = tmp_path_factory.mktemp("r")
    (root / ".graduate").mkdir()
    data = {"drift": {"length": length}, "agreement": {"buckets": [bucket, {"items": 3, "compared": 2, "agreement": 0.5, "teacher_share": 0.1, "start": "2026-01-01T00:00"}]}}
    (root / ".graduate" / "monitor.json").write_text(json.dumps({**data, **parts}))
    html = render_report(build_context(proj.spec, root, proj.engine, assessment, None, None))
    assert 'id="monitor-not-run"' not in html and "Production monitor" in html


def test_the_monitor_section_plots_what_monitor_writes(evaluated_project, tmp_path):
    project, _ = evaluated_project
    proj = Project.load(project)
    (tmp_path / ".graduate").mkdir()
    data = {
        "ok": False, "window": {"since": "2026-01-01T00:00:00", "until": "2026-01-02T00:00:00"}, "traffic": {"items": 3}, "routing": {"teacher_share": 0.25},
        "agreement": {"buckets": [{"items": 3, "compared": 2, "agreement": 0.5, "teacher_share": 0.1, "start": "2026-01-01T00:00"}]},
        "labels": {"training": {"ok": 0.6, "bad": 0.4}, "traffic": {"ok": 0.9, "bad": 0.1}},
        "drift": {"length": {"bin_edges": [4.0, 4.0, 5.0, 5.0], "reference_share": [0.0, 1.0, 0.0], "current_share": [0.0, 0.0, 1.0]}},
        "checks": [{"name": "length_psi", "value": 18.4, "threshold": 0.2, "comparison": "<=", "ok": False, "message": "FAILED"}],
    }  # fmt: skip
    (tmp_path / ".graduate" / "monitor.json").write_text(json.dumps(data))
    html = render_report(build_context(proj.spec, tmp_path, proj.engine, proj.latest_assessment(), None, None))
    monitor = html[html.index('<section id="monitor">') :]
    monitor = monitor[: monitor.index("</section>")]
    assert monitor.count('src="data:image/svg+xml;base64,') == 3 and "25.0%" in monitor and "length_psi" in monitor
