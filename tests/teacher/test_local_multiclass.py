"""Issue 17 acceptance with a local teacher: `graduate init --teacher local`, then label, run,
audit and the cost gate on a 3-class task the packaged 0.5B model answers (llama.cpp on CPU)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from multiclass_project import items
from servers.graduate_server import KEY, serve_process
from teacher.live_teacher import cli_env

LABELS = ["Tea", "Shoes", "Vitamin"]


def graduate(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**cli_env(), "COLUMNS": "200"}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "graduate", *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_a_local_teacher_project_from_init_to_gates(tmp_path: Path) -> None:
    project = tmp_path / "local"
    init = graduate("init", str(project), "--teacher", "local", "--model", "qwen2.5-0.5b", "--labels", ",".join(LABELS), "--task", "category")
    assert init.returncode == 0, init.stderr
    assert "teacher audit" in " ".join(init.stdout.split())  # the advice to iterate on the prompt
    spec = yaml.safe_load((project / "graduate.yaml").read_text())
    spec["teacher"].update(local={"n_ctx": 1024})
    spec["students"] = [{"kind": "majority"}, {"kind": "tfidf-logreg"}]
    spec["gates"] = ["student.cost_per_1k <= 0.001 * teacher.cost_per_1k"]
    spec["evaluation"] = {"latency_items": 10, "bootstrap_resamples": 100}
    (project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    rows = []
    for lab in LABELS:
        chosen = [r for r in items(LABELS) if r["category"] == lab]
        rows += [(r["id"], r["title"], "", "train") for r in chosen[:4]] + [(r["id"], r["title"], lab, "test") for r in chosen[4:7]]
    with (project / "data" / "items.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "label", "split"])
        w.writerows(rows)

    run_first = graduate("run", str(project))  # loads the data; the items have no teacher answers yet
    label = graduate("label", str(project), "--input", str(project / "data" / "items.csv"), timeout=900)
    assert label.returncode == 0, label.stdout[-2000:] + label.stderr[-2000:]
    assert "sent and answered" in label.stdout and "labelling with" in label.stderr  # plain progress lines off a terminal
    run = graduate("run", str(project))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = json.loads((project / ".graduate" / "summary.json").read_text())
    teacher = summary["teacher"]
    # The local model is priced by its CPU time, marked as an estimate: the README's cost gate can pass.
    assert teacher["cost_estimated"] and teacher["cost_per_1k_usd"] > 0 and "local model" in teacher["cost_basis"]
    assert summary["gates_passed"], summary["gates"]
    t = summary["test_sets"]["test"]["teacher"]
    assert t["answered"] == 9 and t["unparseable"] == 0  # constrained decoding: every answer is a label
    assert summary["data"][0]["rows"] == len(rows) and "(est.)" in run.stdout
    status = graduate("status", str(project))
    assert status.returncode == 0
    for command in (["evaluate"], ["errors"], ["report"], ["teacher", "audit"]):
        res = graduate(*command, str(project))
        assert res.returncode == 0, (command, res.stdout[-1500:], res.stderr[-1500:])
    html = (project / ".graduate" / "report.html").read_text(encoding="utf-8")
    assert "(positive:" not in html and 'id="bias"' not in html and "(est.)" in html
    with serve_process(project, "--workers", "0", env={**cli_env(), "GRADUATE_API_KEYS": KEY}) as server:
        r = httpx.post(f"{server.url}/v1/classify", json={"texts": ["Green tea bags"]}, headers={"authorization": f"Bearer {KEY}"}, timeout=30)
        assert r.status_code == 200 and r.json()["results"][0]["label"] in LABELS
    assert run_first.returncode in (0, 2, 70)  # before labelling there may be no training set; never a traceback
    assert "Traceback" not in run_first.stderr
