"""graduate label --ray with a worker killed midway (issue 15): N items, 2 workers on a local Ray
cluster, the fault-injecting teacher (5% HTTP 500, 0.1 s latency) on 127.0.0.1, SQLite store; one
worker SIGKILLed once a third is answered. Reports the calls each worker had leased at the kill,
how many calls the teacher answered twice (must be at most the dead worker's calls in flight),
items left unanswered, the time, and the wait for the lease to lapse.

    .venv/bin/python benchmarks/bench_ray_lease.py [--items 2000] [--lease-s 10]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from common import jigsaw_comments, table, tiny_copy  # noqa: E402


def main() -> int:
    import csv

    import psutil
    from servers import fake_openai_server
    from sqlalchemy import select

    from graduate.pipeline.project import Project
    from graduate.store.db import now
    from graduate.store.schema import teacher_calls

    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--lease-s", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    comments = jigsaw_comments()
    with fake_openai_server(latency=0.1, p500=0.05, seed=5) as server:
        project = tiny_copy("bench-ray-lease-")
        data = project / "items.csv"
        with data.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["comment_text"])
            for i in range(args.items):
                w.writerow([f"{comments[i % len(comments)][:300]} (#{i})"])
        import yaml

        spec = yaml.safe_load((project / "graduate.yaml").read_text())
        spec["teacher"].update(base_url=server.base_url, concurrency=args.concurrency, requests_per_minute=1_000_000, tokens_per_minute=100_000_000, budget_usd=1000)
        (project / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        command = [sys.executable, "-m", "graduate", "label", str(project), "--input", str(data), "--ray", "local", "--workers", "2", "--lease-s", str(args.lease_s)]
        started = time.perf_counter()
        client = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**__import__("os").environ, "OPENAI_API_KEY": "sk-test"})
        while server.stats()["ok"] < args.items // 3:
            if client.poll() is not None:
                raise SystemExit(client.communicate()[1][-3000:])
            time.sleep(0.05)
        victim = next(p for p in psutil.process_iter(["cmdline"]) if any("ray::LabelWorker" in part for part in (p.info["cmdline"] or [])))
        victim.send_signal(signal.SIGKILL)
        killed_at = time.perf_counter()
        engine = Project.load(project).engine
        with engine.connect() as conn:
            leased = Counter(
                r.lease_owner for r in conn.execute(select(teacher_calls.c.lease_owner).where(teacher_calls.c.status == "pending", teacher_calls.c.lease_until > now()))
            )
        err = client.communicate(timeout=900)[1]
        total = time.perf_counter() - started
        stats = server.stats()
        with engine.connect() as conn:
            statuses = Counter(conn.execute(select(teacher_calls.c.status).where(teacher_calls.c.source == "live")).scalars())
    if client.returncode != 0:
        print(err[-3000:], file=sys.stderr)
        return 1
    in_flight = sorted(leased.values(), reverse=True)
    table(
        f"graduate label --ray: {args.items} items, 2 workers, one SIGKILLed at a third (lease {args.lease_s:g} s, concurrency {args.concurrency})",
        ["items", "leased per worker at the kill", "paid twice", "answered", "unanswered", "failed calls", "total s", "after the kill s"],
        [[args.items, " / ".join(map(str, in_flight)), stats["paid_twice"], statuses.get("ok", 0), args.items - statuses.get("ok", 0), statuses.get("error", 0), f"{total:.1f}", f"{time.perf_counter() - killed_at:.1f}"]],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
