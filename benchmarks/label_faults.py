"""The live teacher client against a faulty server, with `graduate label` killed mid-run.

    .venv/bin/python benchmarks/label_faults.py [--items-a 2000] [--items-b 1200] [--only A|B]

A: 2,000 real comments at concurrency 32 against a server answering 5% 429 (Retry-After 1 s),
   2% 500 and 1% hung requests; `graduate label` is SIGKILLed at ~30% and ~60%, then resumed.
   Target: exactly one stored answer per item, nothing paid twice beyond the calls in flight.
B: the server allows 600 requests per sliding minute, the client is set to 600 rpm; ~2 minutes.
   Target: >= 95% of 600 rpm achieved, < 1% of requests answered 429, 0 failed items.
C: the same limit enforced per sliding second (10 requests), refused requests counted against it,
   as a provider that quantises its per-minute limit does. Same targets. `--injected-429 0.05`
   adds random 429s (Retry-After 1 s), reported apart: each pauses the whole client for 1 s.
"""

from __future__ import annotations

import argparse
import csv
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml
from sqlalchemy import create_engine, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "tests"))
from common import table  # noqa: E402
from servers import FakeOpenAI, fake_openai_server  # noqa: E402
from servers.fake_openai import content_key  # noqa: E402

from graduate.store.db import default_url, open_engine  # noqa: E402
from graduate.store.schema import teacher_calls  # noqa: E402

COMMENTS = ROOT.parent / "shared" / "data" / "jigsaw" / "comments.csv"
SPEC = ROOT / "tests" / "fixtures" / "tiny" / "graduate.yaml"
RPM = 600


def make_project(directory: Path, n: int, base_url: str, **teacher: object) -> tuple[Path, Path]:
    """A project with just task + teacher + prices, and a CSV of the first ``n`` distinct real comments."""
    raw = yaml.safe_load(SPEC.read_text())
    spec = {"task": raw["task"], "teacher": {**raw["teacher"], "base_url": base_url, **teacher}, "prices": raw["prices"]}
    spec["students"] = [{"kind": "majority"}]
    directory.mkdir(parents=True)
    (directory / "graduate.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    seen: set[str] = set()
    items = directory / "items.csv"
    with COMMENTS.open(newline="", encoding="utf-8") as f, items.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "comment_text"])
        for row in csv.DictReader(f):
            text = row["comment_text"]
            if text.strip() and text not in seen:
                seen.add(text)
                writer.writerow([row["id"], text])
            if len(seen) == n:
                break
    if len(seen) < n:
        raise SystemExit(f"{COMMENTS} has only {len(seen)} distinct comments, {n} asked")
    return directory, items


def label_command(project: Path, items: Path) -> list[str]:
    return [sys.executable, "-m", "graduate", "label", str(project), "--input", str(items), "--id-column", "id"]


def calls(project: Path) -> list:
    engine = create_engine(default_url(project))
    with engine.connect() as conn:
        rows = conn.execute(select(teacher_calls.c.cache_key, teacher_calls.c.status, teacher_calls.c.request)).all()
    engine.dispose()
    return rows


def run_until(server: FakeOpenAI, project: Path, items: Path, paid: int) -> int:
    """Start `graduate label`, SIGKILL it once the server has answered ``paid`` calls; the calls in flight then."""
    client = subprocess.Popen(label_command(project, items), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while server.stats()["ok"] < paid:
        if client.poll() is not None:
            raise SystemExit(f"graduate label ended (exit {client.returncode}) before the kill at {paid} answers")
        time.sleep(0.1)  # polling is not free on 2 cores shared with the client and the server
    client.send_signal(signal.SIGKILL)
    client.wait()
    return sum(1 for r in calls(project) if r.status == "pending")


def scenario_a(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, fake_openai_server(
        p429=0.05, p500=0.02, phang=0.01, retry_after=1, hang_s=60, latency=0.05, jitter=0.1, seed=1
    ) as server:
        project, items = make_project(
            Path(tmp) / "a", n, server.base_url, concurrency=32, requests_per_minute=1_000_000,
            tokens_per_minute=100_000_000, timeout_s=2, max_retries=8, budget_usd=1_000,
        )  # fmt: skip
        open_engine(default_url(project)).dispose()  # migrate before the clock starts
        t0 = time.perf_counter()
        in_flight = [run_until(server, project, items, int(n * 0.3)), run_until(server, project, items, int(n * 0.6))]
        final = subprocess.run(label_command(project, items), capture_output=True, text=True)
        wall = time.perf_counter() - t0
        served = server.stats(detail=True)
        rows = calls(project)
    if final.returncode != 0:
        print(final.stdout, final.stderr, file=sys.stderr)
    ok = [r for r in rows if r.status == "ok"]
    per_item = Counter(r.cache_key for r in ok)
    paid = served["per_content"]
    stored = {content_key(r.request["messages"]) for r in ok}
    table(
        f"A: {n:,} items, concurrency 32, 5% 429 / 2% 500 / 1% hung, SIGKILL at 30% and 60%, then resumed",
        ["what", "value"],
        [
            ["items", f"{n:,}"],
            ["items with exactly one stored ok answer", f"{sum(1 for c in per_item.values() if c == 1):,}"],
            ["items with none / with more than one", f"{n - len(per_item)} / {sum(1 for c in per_item.values() if c > 1)}"],
            ["rows left pending or failed", sum(1 for r in rows if r.status != "ok")],
            ["server: successful (paid) responses", f"{served['ok']:,}"],
            ["stored ok rows", f"{len(ok):,}"],
            ["paid twice (server 200s - stored rows)", served["ok"] - len(ok)],
            ["calls in flight at the kills (allowed)", f"{sum(in_flight)} ({' + '.join(map(str, in_flight))})"],
            ["paid, never stored", len(set(paid) - stored)],
            ["server: requests / 429 / 500 / hung", f"{served['requests']:,} / {served['status_429']} / {served['status_500']} / {served['hangs']}"],
            ["final run exit code", final.returncode],
            ["total wall time (3 runs)", f"{wall:.1f} s"],
        ],
    )


def scenario_b(n: int, *, per_second: bool = False, injected_429: float = 0.0) -> None:
    server_opts: dict[str, object] = {"rpm": RPM, "latency": 0.05, "jitter": 0.1, "seed": 2}
    if per_second:
        server_opts.update(window_s=1.0, count_refused=True)
    if injected_429:
        server_opts.update(p429=injected_429, retry_after=1.0)
    with tempfile.TemporaryDirectory() as tmp, fake_openai_server(**server_opts) as server:
        project, items = make_project(
            Path(tmp) / "b", n, server.base_url, concurrency=32, requests_per_minute=RPM,
            tokens_per_minute=100_000_000, budget_usd=1_000,
        )  # fmt: skip
        t0 = time.perf_counter()
        result = subprocess.run(label_command(project, items), capture_output=True, text=True)
        wall = time.perf_counter() - t0
        served = server.stats()
        failed = sum(r.status != "ok" for r in calls(project))
    if result.returncode != 0:
        print(result.stdout, result.stderr, file=sys.stderr)
    span = served["last_ok_at"] - served["first_ok_at"]
    rate = (served["ok"] - 1) / span * 60
    share_429 = served["status_429_rpm"] / served["requests"]
    how = ("per sliding second (10), refused requests counted" if per_second else "per sliding minute") + (
        f", + {injected_429:.0%} injected 429s" if injected_429 else ""
    )
    table(
        f"{'C' if per_second else 'B'}: {n:,} items, server limit {RPM} requests per minute enforced {how}; client requests_per_minute: {RPM}",
        ["what", "value", "target"],
        [
            ["items answered", f"{served['ok']:,}", f"{n:,}"],
            ["achieved rate, first to last answer", f"{rate:.1f} rpm ({rate / RPM:.1%} of {RPM})", ">= 95%"],
            ["requests answered 429 for the limit", f"{served['status_429_rpm']} of {served['requests']:,} ({share_429:.2%})", "< 1%"],
            *([["injected 429s (Retry-After 1 s)", f"{served['status_429']}", ""]] if injected_429 else []),
            ["items failed", failed, "0"],
            ["client wall time (incl. start-up)", f"{wall:.1f} s", ""],
            ["exit code", result.returncode, "0"],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items-a", type=int, default=2000, help="items in scenario A")
    parser.add_argument("--items-b", type=int, default=1200, help="items in scenario B (at 600 rpm: ~2 min per 1,200)")
    parser.add_argument("--items-c", type=int, default=1200, help="items in scenario C")
    parser.add_argument("--injected-429", type=float, default=0.0, help="scenario C: share of requests answered 429 at random")
    parser.add_argument("--only", choices=["A", "B", "C"], default=None, help="run one scenario")
    args = parser.parse_args()
    if args.only in (None, "A"):
        scenario_a(args.items_a)
    if args.only in (None, "B"):
        scenario_b(args.items_b)
    if args.only in (None, "C"):
        scenario_b(args.items_c, per_second=True, injected_429=args.injected_429)


if __name__ == "__main__":
    main()
