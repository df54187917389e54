"""The local teacher (llama.cpp server + packaged GGUF models): quality against gold on
test.balanced next to GPT-4 from the recorded logs, throughput, and what labelling costs in CPU.

    .venv/bin/python benchmarks/bench_local_teacher.py                 # everything (~30 min on 2 cores)
    .venv/bin/python benchmarks/bench_local_teacher.py --part accuracy --model qwen2.5-coder-1.5b
    .venv/bin/python benchmarks/bench_local_teacher.py --part throughput --items 24

accuracy: labels test.balanced (400 comments, 50% toxic) with the spec's own prompt through
`Project.label` (the real client, cache and call log), constrained to {"is_bad": 0|1} and with
logprobs, so it also reports the ROC-AUC of the soft labels. GPT-4's figures come from its recorded
answers to the same requests. Cost: the CPU seconds of the server process (and of the client)
measured with getrusage, times serving.cpu_core_hour_usd; also 2 cores x wall time, as on a
dedicated 2-vCPU box. The machine's load average is printed: other work on the cores slows the
wall-clock figures, not the CPU-second ones as much.

throughput: the same requests sent straight to a started server, one at a time, with the shared
prompt prefix (system message + instructions) reused from the server's KV cache, without it (a
per-request line at the start of the system message defeats the prefix match), and with 4 requests
queued at once (llama-cpp-python's server has no parallel slots: it serialises them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from common import EXAMPLE, console, table  # noqa: E402

MODELS = ["qwen2.5-0.5b", "qwen2.5-coder-1.5b"]
SCHEMA = {"type": "object", "properties": {"is_bad": {"enum": [0, 1]}}, "required": ["is_bad"]}
ITEMS_FOR_COST = 10_000


def cpu_seconds(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def project_dir(target: Path, model: str, *, with_gpt4_log: bool) -> Path:
    """The example spec, teacher swapped for the local model, data and (optionally) GPT-4's simple log."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    gpt4 = raw["teacher"]
    raw["teacher"] = {
        "kind": "local",
        "model": model,
        "prompt_name": gpt4["prompt_name"],
        "prompt": gpt4["prompt"],
        "temperature": 0,
        "max_tokens": 16,
        "logprobs": True,
        "top_logprobs": 5,
        "response_format": {"type": "json_object", "schema": SCHEMA},
        "concurrency": 2,
        "timeout_s": 600,
    }
    for d in raw["data"]:
        d["path"] = str((EXAMPLE.parent / d["path"]).resolve())
    logs = [log for log in raw["teacher_logs"] if "gpt-4-1106-preview.simple" in log["input"]] if with_gpt4_log else []
    for log in logs:
        log["input"] = str((EXAMPLE.parent / log["input"]).resolve())
        log["output"] = str((EXAMPLE.parent / log["output"]).resolve())
    raw["teacher_logs"] = logs
    raw["gpt4_teacher"] = gpt4
    target.mkdir(parents=True, exist_ok=True)
    gpt4_spec = raw.pop("gpt4_teacher")
    (target / "graduate.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (target / "gpt4_teacher.json").write_text(json.dumps(gpt4_spec))
    return target


def accuracy(model: str, limit: int | None) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from graduate.data.teacher_labels import teacher_labels
    from graduate.evaluate.cost import teacher_cost_per_1k
    from graduate.evaluate.metrics import classification_metrics
    from graduate.evaluate.testsets import load_test_set
    from graduate.pipeline.project import Project
    from graduate.spec import TeacherSpec
    from graduate.teacher.registry import make_teacher

    with tempfile.TemporaryDirectory() as d:
        root = project_dir(Path(d) / "p", model, with_gpt4_log=True)
        project = Project.load(root)
        project.load_data()
        project.import_logs()
        test = load_test_set(project.engine, next(t for t in project.spec.test_sets if t.name == "test.balanced"))
        examples, gold = test.examples[:limit], test.gold[:limit]
        task = project.spec.task

        gpt4 = TeacherSpec.model_validate(json.loads((root / "gpt4_teacher.json").read_text()))
        g = teacher_labels(project.engine, task, gpt4, examples, record=False)
        g_pairs = [(y, g[ex.id].label) for ex, y in zip(examples, gold) if g[ex.id].label is not None]
        gpt4_m = classification_metrics([y for y, _ in g_pairs], [p for _, p in g_pairs], labels=task.labels, positive=task.positive)
        gpt4_cost = teacher_cost_per_1k([g[ex.id].call for ex in examples if g[ex.id].call is not None])

        backend = make_teacher(project.spec.teacher)
        done = [0]
        started = time.perf_counter()

        def progress(n: int) -> None:
            done[0] += n
            if done[0] % 25 == 0 or done[0] == len(examples):
                rate = done[0] / (time.perf_counter() - started)
                console.print(f"  {model}: {done[0]}/{len(examples)} ({rate:.2f}/s, load {os.getloadavg()[0]:.1f})")

        server_cpu0, client_cpu0, load0 = cpu_seconds(resource.RUSAGE_CHILDREN), cpu_seconds(resource.RUSAGE_SELF), os.getloadavg()[0]
        t0 = time.perf_counter()
        _, stats = project.label([ex.text for ex in examples], backend=backend, progress=progress)
        wall = time.perf_counter() - t0
        server_cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - server_cpu0
        client_cpu = cpu_seconds(resource.RUSAGE_SELF) - client_cpu0
        load = (load0 + os.getloadavg()[0]) / 2

        answers = teacher_labels(project.engine, task, project.spec.teacher, examples)
        pairs = [(y, answers[ex.id].label) for ex, y in zip(examples, gold) if answers[ex.id].label is not None]
        m = classification_metrics([y for y, _ in pairs], [p for _, p in pairs], labels=task.labels, positive=task.positive)
        soft = [(y, answers[ex.id].probs) for ex, y in zip(examples, gold) if answers[ex.id].probs is not None]
        auc = roc_auc_score([y == task.positive for y, _ in soft], [p[task.positive] for _, p in soft]) if soft else None
        threads = backend.server.threads
        per_item = [
            {"id": ex.external_id, "gold": y, "label": answers[ex.id].label, "probs": answers[ex.id].probs, "error": answers[ex.id].error}
            for ex, y in zip(examples, gold)
        ]
        project.engine.dispose()
    return {
        "model": model,
        "n": len(examples),
        "sent": stats.sent,
        "failed": stats.failed,
        "answered": len(pairs),
        "accuracy": m["accuracy"],
        "f1": m["f1"],
        "auc_soft": auc,
        "soft_labels": len(soft),
        "wall_s": wall,
        "items_per_s": len(examples) / wall,
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "threads": threads,
        "load": load,
        "gpt4_accuracy": gpt4_m["accuracy"],
        "gpt4_f1": gpt4_m["f1"],
        "gpt4_answered": len(g_pairs),
        "gpt4_cost_per_1k": gpt4_cost.per_1k_usd,
        "gpt4_cost_basis": gpt4_cost.basis,
        "items": per_item,
    }


def throughput(model: str, items: int) -> list[dict[str, Any]]:
    import openai

    from graduate.data.csv_source import read_items
    from graduate.spec import load_spec
    from graduate.models.gguf import resolve_model
    from graduate.teacher.local_server import LocalServer

    spec, _ = load_spec(EXAMPLE)
    src = spec.data[0]
    rows, _ = read_items(src.path, text_column=spec.task.text_column, id_column=src.id_column, tags_column=src.tags_column)
    texts = [r.text for r in rows if "test.balanced" in r.tags][:items]
    prompt = spec.teacher.prompt
    out = []
    with LocalServer(resolve_model(model), alias=model, n_ctx=2048) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", timeout=600, max_retries=0)

        def ask(i: int, text: str, nonce: bool) -> int:
            system = (f"Request {i}. " if nonce else "") + "You are a helpful assistant."
            r = client.chat.completions.create(
                model=model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt.replace("{text}", text)}],
                temperature=0,
                max_tokens=16,
                response_format={"type": "json_object", "schema": SCHEMA},  # type: ignore[arg-type,typeddict-item]
            )
            return r.usage.prompt_tokens if r.usage else 0

        ask(-1, "warm up", False)
        for name, nonce, workers in [("prefix reused, 1 at a time", False, 1), ("no prefix reuse, 1 at a time", True, 1), ("prefix reused, 4 queued", False, 4)]:
            cpu0, load0 = proc_cpu_seconds(server.pid), os.getloadavg()[0]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                tokens = list(pool.map(lambda it: ask(it[0], it[1], nonce), enumerate(texts)))
            wall = time.perf_counter() - t0
            cpu = proc_cpu_seconds(server.pid) - cpu0
            out.append(
                {
                    "model": model,
                    "config": name,
                    "items_per_s": len(texts) / wall,
                    "cpu_s_per_item": cpu / len(texts),
                    "prompt_tokens": sum(tokens) / len(tokens),
                    "threads": server.threads,
                    "load": (load0 + os.getloadavg()[0]) / 2,
                }
            )
            console.print(f"  {model} {name}: {out[-1]['items_per_s']:.2f}/s, {out[-1]['cpu_s_per_item']:.2f} CPU-s/item")
        client.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["accuracy", "throughput", "all"], default="all")
    ap.add_argument("--model", action="append", choices=MODELS, help="Model(s) to measure (default: both for throughput, qwen2.5-coder-1.5b for accuracy).")
    ap.add_argument("--limit", type=int, default=None, help="Label only the first N items of test.balanced (default: all 400).")
    ap.add_argument("--items", type=int, default=24, help="Items per throughput configuration.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = ap.parse_args()
    from graduate.spec import load_spec

    core_hour = load_spec(EXAMPLE)[0].serving.cpu_core_hour_usd
    results: dict[str, Any] = {"core_hour_usd": core_hour}

    if args.part in ("throughput", "all"):
        rows = [r for m in (args.model or MODELS) for r in throughput(m, args.items)]
        results["throughput"] = rows
        table(
            f"local teacher throughput ({args.items} test.balanced comments each; {os.cpu_count()} cores)",
            ["model / configuration", "comments/s", "server CPU-s / comment", "prompt tokens", "threads", "load avg"],
            [[f"{r['model']}: {r['config']}", f"{r['items_per_s']:.2f}", f"{r['cpu_s_per_item']:.2f}", f"{r['prompt_tokens']:.0f}", r["threads"], f"{r['load']:.1f}"] for r in rows],
        )

    if args.part in ("accuracy", "all"):
        accs = [accuracy(m, args.limit) for m in (args.model or ["qwen2.5-coder-1.5b"])]
        results["accuracy"] = accs
        rows = []
        a0 = accs[0]
        rows.append(
            [
                "gpt-4-1106-preview (recorded)",
                f"{a0['gpt4_answered']}/{a0['n']}",
                f"{a0['gpt4_accuracy']:.3f}",
                f"{a0['gpt4_f1']:.3f}",
                "–",
                "–",
                f"${a0['gpt4_cost_per_1k'] * ITEMS_FOR_COST / 1000:.2f} (est. tokens x list price)",
            ]
        )
        for a in accs:
            cpu_per_item = (a["server_cpu_s"] + a["client_cpu_s"]) / a["n"]
            cpu_cost = cpu_per_item * ITEMS_FOR_COST / 3600 * core_hour
            wall_cost = a["threads"] * (a["wall_s"] / a["n"]) * ITEMS_FOR_COST / 3600 * core_hour
            a["cost_10k_cpu_usd"], a["cost_10k_dedicated_usd"], a["cpu_s_per_item"] = cpu_cost, wall_cost, cpu_per_item
            rows.append(
                [
                    f"{a['model']} (local, {a['threads']} threads)",
                    f"{a['answered']}/{a['n']}",
                    f"{a['accuracy']:.3f}",
                    f"{a['f1']:.3f}",
                    f"{a['auc_soft']:.3f}" if a["auc_soft"] is not None else "–",
                    f"{a['items_per_s']:.2f} (load {a['load']:.1f})",
                    f"${cpu_cost:.3f} CPU time ({cpu_per_item:.2f} CPU-s/item); ${wall_cost:.3f} as {a['threads']} dedicated cores x wall",
                ]
            )
        table(
            f"teacher quality on test.balanced against gold, and the cost of labelling {ITEMS_FOR_COST:,} comments (${core_hour}/core-hour)",
            ["teacher", "answered", "accuracy", "F1", "soft-label AUC", "comments/s", f"cost of {ITEMS_FOR_COST:,}"],
            rows,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
