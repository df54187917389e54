"""`graduate teacher audit --live` against a real OpenAI-compatible server on 127.0.0.1: the
missing answers go through the labelling client, n samples per item, then come from the cache."""

from __future__ import annotations

from pathlib import Path

import yaml
from servers import fake_openai_server
from servers.fake_openai import is_rude
from sqlalchemy import select

from graduate import Project
from graduate.store.schema import teacher_calls
from graduate.experiments.audit import run_audit


def test_live_audit_samples_n_answers_and_then_reads_them_from_the_log(tiny_project: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with fake_openai_server(latency=0.005) as server:
        raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
        raw["teacher"].update(requests_per_minute=60_000, concurrency=8)
        raw["audit"] = {
            "configs": [
                {"name": "recorded gpt-4"},
                {
                    "name": "local x3",
                    "model": "fake-model",
                    "base_url": server.base_url,
                    "temperature": 0.7,
                    "n": 3,
                    "few_shot": [{"text": "thanks for fixing the typo", "answer": '{"is_bad": 0}'}],
                },
            ]
        }
        raw["prices"]["fake-model"] = {"input_per_1m": 1.0, "output_per_1m": 2.0}
        (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        proj = Project.load(tiny_project)
        proj.import_logs()
        proj.load_data()

        audit = run_audit(proj.engine, proj.spec, live=True)
        live = {c["name"]: c for c in audit["configs"]}["local x3"]
        tb = live["sets"]["test.balanced"]
        assert live["live"]["sent"] == 41 * 3 and live["live"]["failed"] == 0
        assert tb["answered"] == 41 and tb["samples_per_item"] == 3.0
        assert tb["latency_p50_ms"] is not None and tb["latency_p95_ms"] >= tb["latency_p50_ms"]
        assert tb["cost_per_1k_usd"] > 0 and not tb["cost_estimated"]
        assert tb["repeated_items"] == 41 and tb["disagreeing_items"] == 0  # this server always answers alike
        assert live["few_shot"] == 1
        # the recorded configuration needs nothing live: the call log already answers it
        assert {c["name"]: c for c in audit["configs"]}["recorded gpt-4"]["live"]["sent"] == 0
        with proj.engine.connect() as conn:
            requests = conn.execute(select(teacher_calls.c.request).where(teacher_calls.c.model == "fake-model")).scalars().all()
        assert len(requests) == 123 and all([m["role"] for m in r["messages"]] == ["user", "assistant", "user"] for r in requests)

        # the audit's labels are the server's answers (it judges rude words)
        from graduate.evaluate.testsets import load_test_set

        test = load_test_set(proj.engine, proj.spec.test_sets[0])
        rude = sum(is_rude(ex.text) for ex in test.examples)
        assert round(tb["tpr"] * test.gold.count("bad") + tb["fpr"] * test.gold.count("ok")) == rude

        again = run_audit(Project.load(tiny_project).engine, proj.spec, live=True)
        assert {c["name"]: c for c in again["configs"]}["local x3"]["live"]["sent"] == 0
        assert server.stats()["requests"] == 123


def test_live_audit_stopped_by_the_budget_says_so_and_exits_3(tiny_project: Path) -> None:
    """It printed 'answers only 17% ...; run with --live' twice after a --live run the budget had
    stopped, and exited 0."""
    import subprocess
    import sys

    from teacher.live_teacher import cli_env

    with fake_openai_server() as server:
        raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
        raw["teacher"].update(base_url=server.base_url, budget_usd=0.01, requests_per_minute=60_000)
        raw["teacher_logs"] = []  # nothing recorded: every answer is asked for live
        (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        result = subprocess.run(
            [sys.executable, "-m", "graduate", "teacher", "audit", str(tiny_project), "--live"], capture_output=True, text=True, timeout=300, env=cli_env()
        )
        sent = server.stats()["ok"]
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr
    assert 0 < sent < 41
    assert f"--live teacher: sent {sent}, from the call log 0, failed 0, not sent {41 - sent}" in result.stdout, result.stdout
    assert f"budget of $0.01 reached during --live; {41 - sent} answers not asked for" in result.stderr, result.stderr
    assert "run with --live" not in result.stdout + result.stderr


def test_live_audit_refused_by_the_server_names_the_fix_not_a_rerun(tiny_project: Path) -> None:
    """A 4xx fails alike on every run: 'run the same command again' was advised for it."""
    import subprocess
    import sys

    from teacher.live_teacher import cli_env

    with fake_openai_server(shape="model-404") as server:
        raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
        raw["teacher"].update(base_url=server.base_url, requests_per_minute=60_000)
        raw["teacher_logs"] = []
        (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        result = subprocess.run(
            [sys.executable, "-m", "graduate", "teacher", "audit", str(tiny_project), "--live"], capture_output=True, text=True, timeout=300, env=cli_env()
        )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
    assert "check teacher.model in graduate.yaml" in result.stderr, result.stderr
    assert "41 calls during --live were refused or cut off as sent" in result.stderr and "run the same command again" not in result.stderr, result.stderr


def test_audit_configs_of_one_model_at_other_parameters_keep_their_own_labels(tiny_project: Path, monkeypatch) -> None:
    """Two audit configurations of one model and prompt at another temperature (or max_tokens) had
    one labeller name: each run stored its answers over the other's. Each keeps its own now; the
    one at the teacher's parameters keeps the name it always had."""
    from graduate.store.schema import labels

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with fake_openai_server() as server:
        raw = yaml.safe_load((tiny_project / "graduate.yaml").read_text())
        raw["teacher"].update(requests_per_minute=60_000, concurrency=8)
        same = {"model": "fake-model", "base_url": server.base_url}
        raw["audit"] = {"configs": [{"name": "cold", **same}, {"name": "warm", **same, "temperature": 0.7}, {"name": "short", **same, "max_tokens": 20}]}
        (tiny_project / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        proj = Project.load(tiny_project)
        proj.load_data()
        audit = run_audit(proj.engine, proj.spec, live=True)
        run_audit(proj.engine, proj.spec)  # again, from the log: nothing moves
    names = {c["name"]: c["labeller"] for c in audit["configs"]}
    base = proj.spec.teacher.labeller.replace(proj.spec.teacher.model, "fake-model")
    assert names == {"cold": base, "warm": f"{base}~temperature=0.7", "short": f"{base}~max_tokens=20"}
    with proj.engine.connect() as conn:
        stored = conn.execute(
            select(labels.c.labeller, teacher_calls.c.request).join(teacher_calls, teacher_calls.c.id == labels.c.call_id).where(labels.c.labeller.like("teacher:fake-model%"))
        ).all()
    sent = {}
    for who, request in stored:
        sent.setdefault(who, set()).add((request.get("temperature"), request.get("max_tokens")))
    assert sent == {base: {(0.0, None)}, names["warm"]: {(0.7, None)}, names["short"]: {(0.0, 20)}}
    assert sum(who == base for who, _ in stored) == 41
