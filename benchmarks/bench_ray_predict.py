"""graduate predict --ray vs the local path (issue 15): items/s per core on N short texts (the shared
Jigsaw comments repeated), local and with 1 and 2 actors, and Ray's fixed start-up cost (a one-row
run). The student is the tests' tiny project's best (tfidf-logreg after `graduate run`).

    .venv/bin/python benchmarks/bench_ray_predict.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import jigsaw_comments, table, tiny_copy  # noqa: E402


def run(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    project = tiny_copy("bench-ray-predict-")
    graduate = [sys.executable, "-m", "graduate"]
    run(graduate + ["run", str(project)])
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-in-"))
    comments = [c[:200] for c in jigsaw_comments()]  # short texts
    data = tmp / "in.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "comment_text"])
        for i in range(args.rows):
            w.writerow([i, comments[i % len(comments)]])
    one = tmp / "one.csv"
    one.write_text("id,comment_text\n0,hello\n")

    rows = []
    t = run(graduate + ["predict", str(project), "--input", str(data), "--output", str(tmp / "local.csv")])
    t0 = run(graduate + ["predict", str(project), "--input", str(one), "--output", str(tmp / "local1.csv")])
    rows.append(["local (1 process)", 1, f"{t:.1f}", f"{t0:.1f}", f"{args.rows / (t - t0):,.0f}", "1.00"])
    local_rate = args.rows / (t - t0)
    for actors in (1, 2):
        cpus = 1.0 if actors == 1 else 0.75  # two actors on 2 cores leave room for the reads and writes
        extra = ["--ray", "local", "--actors", str(actors), "--cpus-per-actor", str(cpus)]
        out = tmp / f"ray{actors}"
        t = run(graduate + ["predict", str(project), "--input", str(data), "--output", str(out)] + extra)
        t0 = run(graduate + ["predict", str(project), "--input", str(one), "--output", str(tmp / f"ray1row{actors}")] + extra)
        rate = args.rows / (t - t0)
        cores = min(2.0, actors * cpus + 0.5)  # the actors' CPUs plus what reads and writes were given
        rows.append([f"Ray, {actors} actor(s) x {cpus} CPU", actors, f"{t:.1f}", f"{t0:.1f}", f"{rate:,.0f}", f"{rate / actors / local_rate:.2f}"])
        shutil.rmtree(out, ignore_errors=True)
    table(
        f"graduate predict on {args.rows:,} short texts (2 cores): time, fixed cost (a one-row run), items/s once started",
        ["path", "actors", "total s", "fixed s", "items/s after start", "per actor vs local"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
