"""Import speed of the 12,380 recorded GPT-4 calls into a fresh SQLite store (target >= 5,000 calls/s).

    .venv/bin/python benchmarks/bench_import.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import EXAMPLE, table  # noqa: E402

from graduate.data.import_calls import import_log  # noqa: E402
from graduate.spec import load_spec  # noqa: E402
from graduate.store.db import open_engine  # noqa: E402


def main() -> list[list[object]]:
    spec, _ = load_spec(EXAMPLE)
    rows = []
    for log in spec.teacher_logs:
        with tempfile.TemporaryDirectory() as d:
            engine = open_engine(f"sqlite:///{d}/store.db")
            t0 = time.perf_counter()
            rep = import_log(engine, log.input, log.output, price_for=spec.price_for)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = import_log(engine, log.input, log.output, price_for=spec.price_for)
            second = time.perf_counter() - t0
        rows.append([Path(log.output).name.replace(".batch_output.jsonl", ""), rep.added, f"{first:.2f}", f"{rep.added / first:,.0f}", again.added, f"{second:.3f}"])
    table("call-log import into SQLite (target >= 5,000 calls/s)", ["log", "calls", "seconds", "calls/s", "re-import adds", "re-import s"], rows)
    return rows


if __name__ == "__main__":
    main()
