"""graduate teacher audit on real recorded calls: the tiny fixture's 41 test.balanced comments with
all four recorded configurations, and (when ../shared is there) the full shared logs."""

import json
from pathlib import Path

import pytest
import yaml

from graduate import Project
from graduate.errors import NotReadyError, SpecError
from graduate.experiments.audit import run_audit, save_audit_files
from quality_project import with_audit

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "jigsaw"
EXAMPLE = Path(__file__).parents[2] / "examples" / "toxicity" / "graduate.yaml"


def _raw_accuracy(project: Path, log: str) -> float:
    """Independently of graduate: a log's first answer per test.balanced item against gold."""
    import csv
    import re

    gold = {r["id"]: r["is_bad"] for r in csv.DictReader((project / "comments.csv").open(newline="")) if "test.balanced" in r["subsets"]}
    out = {json.loads(line)["custom_id"]: json.loads(line) for line in (project / f"{log}.batch_output.jsonl").open()}
    answers: dict[str, str] = {}
    for line in (project / f"{log}.batch_input.jsonl").open():
        cid = json.loads(line)["custom_id"]
        item = cid.split("/")[1]
        if item in gold and item not in answers and out[cid].get("response"):
            content = out[cid]["response"]["body"]["choices"][0]["message"]["content"]
            answers[item] = re.search(r"is_bad['\"]?\s*[:=]\s*(\d)", content).group(1)
    return sum(answers[i] == gold[i] for i in answers) / len(answers)


def _loaded(project: Path) -> Project:
    proj = Project.load(project)
    proj.import_logs()
    proj.load_data()
    return proj


def test_audit_compares_the_recorded_configurations(tiny_project):
    proj = _loaded(with_audit(tiny_project))
    audit = run_audit(proj.engine, proj.spec)
    by = {c["name"]: c for c in audit["configs"]}
    tb = {name: c["sets"]["test.balanced"] for name, c in by.items()}
    assert all(tb[n]["items"] == 41 for n in tb)
    # every figure is recomputed from the raw answers against gold
    for name, log in [("gpt-4 simple", "gpt-4-1106-preview.simple"), ("gpt-4 cot", "gpt-4-1106-preview.cot"), ("gpt-3.5 cot", "gpt-3.5-turbo.cot")]:
        assert tb[name]["accuracy"] == pytest.approx(_raw_accuracy(tiny_project, log))
    assert tb["gpt-4 simple"]["accuracy"] > tb["gpt-3.5 simple"]["accuracy"]
    assert tb["gpt-4 simple"]["fpr"] < tb["gpt-4 cot"]["fpr"] < tb["gpt-3.5 cot"]["fpr"]
    # on these 41 items (unlike the full 400) gpt-4 cot happens to be the most accurate: the
    # audit says so, and that graduate.yaml's teacher is not the recommended configuration
    best = max((c for c in audit["configs"] if c["kind"] == "config" and c["eligible"]), key=lambda c: c["mean_accuracy"])
    assert audit["recommended"]["name"] == best["name"] == "gpt-4 cot"
    assert audit["recommended"]["ceiling"]["test.balanced"] == tb["gpt-4 cot"]["accuracy"]
    assert not audit["recommended"]["current_is_recommended"]
    assert any(f["flag"] == "high_fpr" for f in by["gpt-3.5 cot"]["flags"])
    assert not any(f["flag"] == "high_fpr" for f in by["gpt-4 simple"]["flags"])
    # gpt-3.5 simple was recorded 4 times per item (plus one more run): self-consistency votes over 4
    x4 = tb["gpt-3.5 simple x4"]
    assert x4["samples_per_item"] == pytest.approx(4.0, abs=0.2) and 0.5 < x4["mean_vote_share"] <= 1.0
    assert tb["gpt-3.5 simple"]["repeated_items"] >= 40
    assert tb["gpt-3.5 simple"]["calls"] == 41 - tb["gpt-3.5 simple"]["missing"]
    # cost per 1k items: priced per call, n samples cost n times as much
    assert x4["cost_per_1k_usd"] > 3 * tb["gpt-3.5 simple"]["cost_per_1k_usd"]
    assert tb["gpt-4 cot"]["cost_per_1k_usd"] > tb["gpt-4 simple"]["cost_per_1k_usd"]
    assert tb["gpt-4 simple"]["latency_p50_ms"] is None  # imported logs carry no latency
    assert by["majority of three"]["kind"] == "ensemble" and by["majority of three"]["sets"]["test.balanced"]["answered"] == 41


def test_audit_is_stored_and_cot_rationales_are_kept(tiny_project):
    from sqlalchemy import select

    from graduate.store.schema import labels, teacher_audits

    proj = _loaded(with_audit(tiny_project))
    audit = run_audit(proj.engine, proj.spec)
    path = save_audit_files(proj.engine, proj.workdir, audit)
    stored = json.loads(path.read_text())
    assert stored["recommended"]["name"] == "gpt-4 cot" and len(stored["configs"]) == 6
    with proj.engine.connect() as conn:
        rows = conn.execute(select(teacher_audits.c.config, teacher_audits.c.recommended).where(teacher_audits.c.audit_id == audit["audit_id"])).all()
        rationales = conn.execute(select(labels.c.rationale).where(labels.c.labeller.like("teacher:gpt-4-1106-preview/cot@%"))).scalars().all()
    assert dict(rows)["gpt-4 cot"] is True and sum(r for _, r in rows) == 1
    assert len(rationales) == 41
    # even the answers whose dict syntax is broken (unquoted reasons) keep both reasons
    assert sum(1 for r in rationales if r and {"reason_innocent", "reason_toxic"} <= set(r)) == 41


def test_audit_set_without_gold_is_a_clear_error(tiny_project):
    raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    del raw["data"][0]["gold_column"], raw["data"][0]["gold_values"]
    raw["test_sets"] = []
    raw["audit"] = {"sets": [{"name": "train sample", "source": "jigsaw", "tags": ["train.5k"]}]}
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(raw))
    proj = _loaded(tiny_project)
    with pytest.raises(NotReadyError, match="audit set 'train sample'.*no gold labels.*gold_column"):
        run_audit(proj.engine, proj.spec)


def test_answers_that_parse_to_no_label_are_counted(tiny_project):
    # Read the same answers with a parser that knows only "0": every "1" is an unknown answer.
    raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    raw["task"]["parse"]["values"] = {"0": "ok"}
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(raw))
    proj = _loaded(tiny_project)
    tb = run_audit(proj.engine, proj.spec)["configs"][0]["sets"]["test.balanced"]
    assert tb["parse_failures"] > 5 and tb["answered"] == 41 - tb["parse_failures"] - tb["missing"]
    assert tb["parse_failure_rate"] == pytest.approx(tb["parse_failures"] / tb["calls"])
    flags = run_audit(proj.engine, proj.spec)["configs"][0]["flags"]
    assert any(f["flag"] == "parse_failures" for f in flags)


def test_unknown_ensemble_member_is_a_spec_error(tiny_project):
    raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
    raw["audit"] = {"configs": [{"name": "a"}], "ensembles": [{"name": "e", "members": ["a", "b"]}]}
    (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match="unknown members \\['b'\\]"):
        Project.load(tiny_project)


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not beside this checkout")
def test_shared_logs_reproduce_the_published_ordering(tmp_path):
    raw = yaml.safe_load(EXAMPLE.read_text())
    for d in raw["data"]:
        d["path"] = str((EXAMPLE.parent / d["path"]).resolve())
    for log in raw["teacher_logs"]:
        log["input"] = str((EXAMPLE.parent / log["input"]).resolve())
        log["output"] = str((EXAMPLE.parent / log["output"]).resolve())
    raw["data"] = raw["data"][:1]  # the bias sets play no part in the audit
    raw["test_sets"] = [t for t in raw["test_sets"] if t.get("purpose") != "bias"]
    raw.pop("evaluation", None)
    raw["gates"] = []
    (tmp_path / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = _loaded(tmp_path)
    audit = run_audit(proj.engine, proj.spec)
    tb = {c["name"]: c["sets"]["test.balanced"] for c in audit["configs"]}
    assert tb["gpt-4 simple"]["accuracy"] == pytest.approx(0.8875)
    assert tb["gpt-4 simple"]["accuracy"] > tb["gpt-4 cot"]["accuracy"] > tb["gpt-3.5 simple"]["accuracy"] > tb["gpt-3.5 cot"]["accuracy"]
    cot = next(c for c in audit["configs"] if c["name"] == "gpt-4 cot")
    assert any(f["flag"] == "high_fpr" and f["set"] == "test.balanced" for f in cot["flags"])
    assert tb["gpt-4 cot"]["fpr"] > 1.5 * tb["gpt-4 simple"]["fpr"]
    assert audit["recommended"]["name"] == "gpt-4 simple"
    assert tb["gpt-3.5 simple"]["failed_calls"] == 5 and tb["gpt-3.5 simple"]["disagreement_rate"] > 0


def test_an_ensemble_short_of_answers_by_ties_is_not_told_to_ask_the_teacher(tiny_project):
    """Two voters that disagree give no label: --live cannot help, which the flag said it would."""
    project = with_audit(tiny_project)
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    raw["audit"]["ensembles"].append({"name": "pair", "members": ["gpt-4 cot", "gpt-4 simple"]})
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = _loaded(project)
    pair = next(c for c in run_audit(proj.engine, proj.spec)["configs"] if c["name"] == "pair")
    s = pair["sets"]["test.balanced"]
    assert s["ties"] > 0 and s["missing"] == 0 and s["answered"] == s["items"] - s["ties"]
    (low,) = [f["message"] for f in pair["flags"] if f["flag"] == "low_coverage"]
    assert f"{s['ties']} tied votes" in low and "odd number of voters" in low and "--live" not in low, low


def test_the_better_ensemble_line_prints_member_names_with_brackets_as_written(tiny_project):
    import os
    import subprocess
    import sys

    project = with_audit(tiny_project)
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    renamed = {"gpt-4 simple": "gpt-4 [simple]", "gpt-4 cot": "gpt-4 [cot]", "gpt-3.5 cot": "gpt-3.5 [cot]"}
    for c in raw["audit"]["configs"]:
        c["name"] = renamed.get(c["name"], c["name"])
    # on these 41 items this majority beats the best single configuration (gpt-4 cot)
    raw["audit"]["ensembles"] = [{"name": "three", "members": list(renamed.values())}]
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "graduate", "teacher", "audit", str(project)], capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "400"}
    )
    assert result.returncode == 0, result.stderr
    assert "the ensemble three (majority of gpt-4 [simple], gpt-4 [cot], gpt-3.5 [cot]) scores" in result.stdout, result.stdout[-1500:]


def test_a_config_whose_name_moved_with_the_teachers_temperature_is_warned_about(tiny_project):
    """An audit config's name carries the sampling parameters it sends unlike the main teacher's:
    when teacher.temperature changed, a config that set its own temperature was renamed although it
    sends what it always sent, and its labels stored under the old name stayed there without a word."""
    import os
    import subprocess
    import sys

    project = with_audit(tiny_project)
    raw = yaml.safe_load((project / "graduate.yaml").read_text())
    raw["audit"]["configs"][0]["temperature"] = 0  # gpt-4 simple, at the teacher's temperature: the plain name
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proj = _loaded(project)
    first = run_audit(proj.engine, proj.spec)
    save_audit_files(proj.engine, proj.workdir, first)
    before = {c["name"]: c["labeller"] for c in first["configs"]}
    assert "~" not in before["gpt-4 simple"] and not first["warnings"]
    proj.engine.dispose()

    raw["teacher"]["temperature"] = 0.7
    (project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "graduate", "teacher", "audit", str(project)], capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "400"}
    )
    assert result.returncode == 0, result.stderr
    moved = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    # only the config that set its own temperature moved; those that inherit it follow the teacher
    assert moved == [
        f"warning: audit config 'gpt-4 simple' is now {before['gpt-4 simple']}~temperature=0.0, not {before['gpt-4 simple']} as in the last audit: "
        "a config's name adds the sampling parameters it sends unlike teacher:, whose parameters changed; the labels stored under the old name "
        "stay under it (answers are matched by request, so none is asked again)"
    ], result.stderr
    # the audit just stored has the new name: the next one says nothing
    proj = Project.load(project)
    assert not run_audit(proj.engine, proj.spec)["warnings"]
