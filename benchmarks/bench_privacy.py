"""privacy.redact (issue 16): recall per type on personal data planted into real Jigsaw comments,
the false-redaction rate on unchanged Jigsaw comments (what ordinary text gets redacted), and the
redaction cost a logged call adds (request + answer, as the proxy and `graduate label` store them).

    .venv/bin/python benchmarks/bench_privacy.py [--per-type 1000] [--comments 5000]

Needs `pip install 'graduate[privacy]'` and ../shared/data/jigsaw beside the checkout.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from common import jigsaw_comments, table  # noqa: E402
from privacy.planted import MAKERS, PLACEHOLDERS  # noqa: E402

from graduate.privacy import Redactor, records  # noqa: E402
from graduate.spec import PrivacySpec  # noqa: E402



def jigsaw(n: int, seed: int) -> list[str]:
    texts = jigsaw_comments()
    return random.Random(seed).sample(texts, min(n, len(texts)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-type", type=int, default=1000)
    ap.add_argument("--comments", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    redactor = Redactor(PrivacySpec(redact=True))
    base = jigsaw(args.comments + args.per_type, args.seed)
    clean, hosts = base[: args.comments], base[args.comments :]

    # recall: each value planted after a random word of a real comment, with a lead-in
    rng = random.Random(args.seed)
    rows = []
    for kind, make in MAKERS.items():
        hit = 0
        for i in range(args.per_type):
            value = make(rng)
            words = hosts[i % len(hosts)].split()
            words.insert(rng.randint(0, len(words)), value + rng.choice(["", ",", "."]))
            out = redactor.record().text(" ".join(words)) or ""
            hit += int(value not in out and f"<{PLACEHOLDERS[kind]}_" in out)
        rows.append([kind, args.per_type, f"{hit / args.per_type:.4f}"])
    table(f"Recall on planted values ({args.per_type} per type in real comments)", ["type", "planted", "recall"], rows)

    # false redactions: unchanged comments (some hold real IP addresses: Wikipedia's anonymous editors)
    per_type: Counter[str] = Counter()
    touched = 0
    examples: dict[str, list[str]] = {}
    for text in clean:
        spans = redactor.spans(text)
        touched += bool(spans)
        for s, e, name in spans:
            per_type[name] += 1
            examples.setdefault(name, [])
            if len(examples[name]) < 3:
                examples[name].append(text[s:e])
    table(
        f"Redactions in {len(clean)} unchanged Jigsaw comments",
        ["type", "finds", "per 1k comments", "examples"],
        [[k, n, f"{1000 * n / len(clean):.1f}", "; ".join(examples[k])] for k, n in per_type.most_common()]
        + [["any", touched, f"{1000 * touched / len(clean):.1f} comments", ""]],
    )

    # cost per logged call: the request body and its answer, as stored
    times = []
    for text in clean[:2000]:
        body = {"model": "m", "messages": [{"role": "user", "content": f"Classify: {text}"}], "temperature": 0}
        t0 = time.perf_counter()
        records.request(redactor, body)
        records.answer(redactor, body, content='{"is_bad": 0}', response={"choices": [{"message": {"content": '{"is_bad": 0}'}}]})
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    q = lambda p: times[min(len(times) - 1, int(p * len(times)))]  # noqa: E731
    table(
        "Redaction cost per logged call (request + answer; in the proxy's log-write thread, off the response path)",
        ["calls", "p50 ms", "p99 ms", "mean ms"],
        [[len(times), f"{q(0.5):.2f}", f"{q(0.99):.2f}", f"{statistics.mean(times):.2f}"]],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
