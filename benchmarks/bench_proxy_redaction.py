"""What privacy.redact adds to a call through `graduate proxy` (issue 16): p50/p99 latency per
chat completion with redaction off and on, against a local upstream on 127.0.0.1 (no network),
sequential calls with real Jigsaw comments in the project's prompt (every fifth with planted
personal data).

    .venv/bin/python benchmarks/bench_proxy_redaction.py [--calls 400]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from common import jigsaw_comments, table, tiny_copy  # noqa: E402



def measure(redact: bool, texts: list[str]) -> list[float]:
    import httpx

    from servers.graduate_server import ThreadServer, prompt_messages
    from servers.sse_openai import create_sse_app

    from graduate.pipeline.project import Project
    from graduate.serve.proxy import create_proxy_app

    project = tiny_copy("bench-proxy-", privacy={"redact": redact})
    proj = Project.load(project)
    times = []
    with ThreadServer(create_sse_app(delay_s=0.0)) as upstream, ThreadServer(create_proxy_app(proj, upstream.base_url)) as proxy:
        with httpx.Client(base_url=proxy.base_url, headers={"authorization": "Bearer sk-x"}, timeout=30) as client:
            for i, text in enumerate(texts):
                body = {"model": "gpt-4-1106-preview", "messages": prompt_messages(proj, text), "temperature": 0}
                t0 = time.perf_counter()
                r = client.post("/chat/completions", json=body)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
    proj.engine.dispose()
    shutil.rmtree(project.parent, ignore_errors=True)
    return times[20:]  # warm-up left out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=400)
    args = ap.parse_args()
    pool = jigsaw_comments()
    rng = random.Random(0)
    texts = [rng.choice(pool) + (f" mail me at user{i}@example.com or +44 20 7946 0{i % 1000:03d}" if i % 5 == 0 else "") for i in range(args.calls + 20)]
    rows = []
    figures = {}
    for redact in (False, True):
        t = sorted(measure(redact, texts))
        q = lambda p: t[min(len(t) - 1, int(p * len(t)))]  # noqa: E731
        figures[redact] = (q(0.5), q(0.99))
        rows.append(["on" if redact else "off", len(t), f"{q(0.5):.2f}", f"{q(0.99):.2f}", f"{statistics.mean(t):.2f}"])
    rows.append(["added", "", f"{figures[True][0] - figures[False][0]:+.2f}", f"{figures[True][1] - figures[False][1]:+.2f}", ""])
    table("graduate proxy: latency per call with privacy.redact off and on (ms, 2 cores, local upstream)", ["redact", "calls", "p50", "p99", "mean"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
