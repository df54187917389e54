"""`graduate privacy forget` and `purge` on a store of 100,000 teacher calls (issue 16): time of
each, and a check that nothing of the forgotten item is left in any table or file of the project
(the database's bytes included, after compaction).

    .venv/bin/python benchmarks/bench_forget.py [--calls 100000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import jigsaw_comments, table, tiny_copy  # noqa: E402

from graduate.data.csv_source import Item  # noqa: E402
from graduate.data.examples import add_examples  # noqa: E402
from graduate.pipeline.project import Project  # noqa: E402
from graduate.store.calls import CallRecord, import_calls  # noqa: E402
from graduate.teacher.prompt import render_messages  # noqa: E402

SECRET = "Please call Maria Lopez at +44 20 7946 0958 about the refund"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    texts = jigsaw_comments()
    rng = random.Random(0)
    project = tiny_copy("bench-forget-", privacy={"retention_days": 30})
    proj = Project.load(project)
    teacher = proj.spec.teacher

    t0 = time.perf_counter()
    records = []
    for i in range(args.calls):
        text = SECRET if i == args.calls // 2 else f"{rng.choice(texts)} #{i}"
        answer = '{"is_bad": %d}' % rng.randint(0, 1)
        records.append(
            CallRecord(model=teacher.model, messages=render_messages(teacher, text), params={"temperature": 0.0}, response={"choices": [{"message": {"content": answer}}]}, content=answer, status="ok", external_id=str(i))
        )
    for start in range(0, len(records), 20_000):
        import_calls(proj.engine, records[start : start + 20_000], kind="batch", path=f"synthetic-{start}", sha256=f"synthetic-{start}")
    add_examples(proj.engine, "mine", [Item(external_id="secret-1", text=SECRET, tags=["train"])])
    fill_s = time.perf_counter() - t0
    db = project / ".graduate" / "graduate.db"
    size_mb = sum(p.stat().st_size for p in db.parent.glob("graduate.db*")) / 1e6

    t1 = time.perf_counter()
    report = proj.forget(item="secret-1")
    forget_s = time.perf_counter() - t1
    proj.engine.dispose()
    left_bytes = sum(SECRET.encode() in p.read_bytes() for p in (project / ".graduate").rglob("*") if p.is_file())

    # purge: every call made "old" by a cutoff in the future (retention 30 days, clock moved on)
    from datetime import timedelta

    from graduate.store import forget as store_forget
    from graduate.store.db import now

    proj = Project.load(project)
    t2 = time.perf_counter()
    purged = store_forget.purge_before(proj.engine, now() + timedelta(days=1), answer_as_label=lambda c: c)
    store_forget.compact(proj.engine)
    purge_s = time.perf_counter() - t2
    proj.engine.dispose()
    after_mb = sum(p.stat().st_size for p in db.parent.glob("graduate.db*")) / 1e6
    table(
        f"forget and purge on {args.calls:,} calls (SQLite, 2 cores)",
        ["step", "seconds", "result"],
        [
            ["fill the store", f"{fill_s:.1f}", f"{size_mb:.0f} MB"],
            ["forget --item", f"{forget_s:.1f}", f"{report.counts.get('teacher_calls', 0)} calls, {report.counts.get('examples', 0)} items; files still holding it: {left_bytes}"],
            ["purge (all calls past retention)", f"{purge_s:.1f}", f"{purged.calls:,} calls purged; store {after_mb:.0f} MB after compaction"],
        ],
    )
    shutil.rmtree(project.parent, ignore_errors=True)
    return 0 if left_bytes == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
