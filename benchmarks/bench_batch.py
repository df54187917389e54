"""graduate batch against the fake Batch API (tests/servers/fake_batch.py) on 127.0.0.1 (issue 15):
plan + write + upload + collect of N requests, with 5% of lines failing (HTTP 500) and the first
batch expiring part-way; submit and collect repeat until every item is answered. Per size: time of
each phase, the client's peak memory (RSS, its own process per size), lines lost, lines paid twice.

    .venv/bin/python benchmarks/bench_batch.py [--sizes 10000,50000,100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from common import jigsaw_comments, table, tiny_copy  # noqa: E402


def child(n: int) -> dict:
    from servers import fake_batch_server
    from sqlalchemy import func, select

    from graduate.pipeline import batch
    from graduate.pipeline.project import Project
    from graduate.store.schema import teacher_calls
    from graduate.teacher.batch_api import BatchClient

    comments = jigsaw_comments()
    texts = [f"{comments[i % len(comments)]} (#{i})" for i in range(n)]  # distinct requests
    out: dict = {"n": n, "plan_write_s": 0.0, "send_s": 0.0, "collect_s": 0.0, "rounds": 0}
    with fake_batch_server(p_line_500=0.05, expire_after=n // 4, seed=1) as server:
        project = tiny_copy("bench-batch-", teacher={**_teacher(), "base_url": server.base_url, "budget_usd": 1e6})
        proj = Project.load(project)
        api = BatchClient(proj.spec.teacher, api_key="sk-test", retry_wait_s=0.01)
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            report = batch.plan(proj, texts)
            t1 = time.perf_counter()
            batch.send_open(proj, api)
            t2 = time.perf_counter()
            out["plan_write_s"] += t1 - t0
            out["send_s"] += t2 - t1
            if report.answered == report.distinct:
                break
            out["rounds"] += 1
            server.advance(60)
            t3 = time.perf_counter()
            batch.collect(proj, client=api)
            out["collect_s"] += time.perf_counter() - t3
            if out["rounds"] > 8:
                break
        out["total_s"] = time.perf_counter() - start
        stats = server.stats()
        with proj.engine.connect() as conn:
            counts = dict(conn.execute(select(teacher_calls.c.status, func.count()).where(teacher_calls.c.source == "batch").group_by(teacher_calls.c.status)).all())
        out["ok"] = counts.get("ok", 0)
        out["lost"] = n - out["ok"]
        out["paid_twice"] = stats["paid_twice"]
        out["answered_by_server"] = stats["answered"]
        out["batches"] = stats["batches"]
        out["statuses"] = stats["statuses"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _teacher() -> dict:
    import yaml

    from common import TINY

    return yaml.safe_load((TINY / "graduate.yaml").read_text())["teacher"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,50000,100000")
    ap.add_argument("--child", type=int, default=None)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return 0
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        result = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return 1
        r = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append([
            f"{n:,}", f"{r['plan_write_s']:.1f}", f"{r['send_s']:.1f}", f"{r['collect_s']:.1f}", f"{r['total_s']:.1f}", r["rounds"], r["batches"],
            f"{r['peak_rss_mb']:.0f}", r["lost"], r["paid_twice"], r["answered_by_server"],
        ])
    table(
        "graduate batch vs the fake Batch API: 5% of lines fail (500), the first batch expires after a quarter of its lines",
        ["requests", "plan+write s", "upload+create s", "collect s", "total s", "rounds", "batches", "peak RSS MB", "lost", "paid twice", "answered"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
