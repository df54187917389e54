"""Personal data planted into real comments: values of each redaction type, in the formats people
write them, at random places in the tiny fixture's Jigsaw comments. Shared by the tests and
benchmarks/bench_privacy.py."""

from __future__ import annotations

import csv
import random
import string
from pathlib import Path

COMMENTS = Path(__file__).parents[1] / "fixtures" / "tiny" / "comments.csv"


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = body + luhn_digit(body)
    sep = rng.choice(["", " ", "-"])
    groups = [number[i : i + 4] for i in range(0, len(number), 4)] if length == 16 else [number[:4], number[4:10], number[10:]]
    return sep.join(groups)


IBAN_SHAPES = {"GB": ("alpha4", 14), "DE": ("", 18), "FR": ("", 23), "NL": ("alpha4", 10), "ES": ("", 20), "IT": ("alpha1", 22)}


def iban(rng: random.Random) -> str:
    country, (kind, n) = rng.choice(sorted(IBAN_SHAPES.items()))
    head = {"alpha4": "".join(rng.choice(string.ascii_uppercase) for _ in range(4)), "alpha1": rng.choice(string.ascii_uppercase), "": ""}[kind]
    bban = head + "".join(rng.choice(string.digits) for _ in range(n - (0 if kind == "" else 0)))
    if country == "FR":
        bban = "".join(rng.choice(string.digits) for _ in range(23))
    if country == "IT":
        bban = rng.choice(string.ascii_uppercase) + "".join(rng.choice(string.digits) for _ in range(22))
    rearranged = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in rearranged)) % 97
    value = f"{country}{check:02d}{bban}"
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if rng.random() < 0.5 else value


def email(rng: random.Random) -> str:
    user = rng.choice(["john.doe", "j_smith", "maria-luisa", "kim99", "a.b.c", "ops+alerts", "Lee.Wong"])
    domain = rng.choice(["example.com", "mail.co.uk", "uni-bonn.de", "gmail.com", "corp.example.org", "startup.io"])
    return f"{user}{rng.randint(1, 999)}@{domain}"


def phone(rng: random.Random) -> str:
    d = lambda n: "".join(rng.choice(string.digits) for _ in range(n))  # noqa: E731
    area = rng.choice(["212", "415", "312", "617", "202", "303", "512", "646", "718", "206", "305", "404"])  # real area codes
    exchange = str(rng.randint(2, 9)) + d(2)
    return rng.choice(
        [
            f"({area}) {exchange}-{d(4)}",
            f"{area}-{exchange}-{d(4)}",
            f"+1 {area} {exchange} {d(4)}",
            f"+44 20 7{d(3)} {d(4)}",
            f"+49 30 {d(8)}",
            f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
        ]
    )


def ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(8))


MAKERS = {"email": email, "phone": phone, "card": card, "iban": iban, "ip": ip}
PLACEHOLDERS = {"email": "EMAIL", "phone": "PHONE", "card": "CARD", "iban": "IBAN", "ip": "IP"}


def comments() -> list[str]:
    with COMMENTS.open(newline="", encoding="utf-8") as f:
        return [r["comment_text"] for r in csv.DictReader(f)]


def planted(n_per_type: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(text, type, value): each value put after a random word of a real comment, with a lead-in."""
    rng = random.Random(seed)
    base = comments()
    out = []
    for kind, make in MAKERS.items():
        for _ in range(n_per_type):
            value = make(rng)
            words = rng.choice(base).split()
            at = rng.randint(0, len(words))
            lead = rng.choice(["contact", "reach me at", "mine is", "see", ""])
            words[at:at] = [w for w in (lead, value + rng.choice(["", ",", ".", ")"])) if w]
            out.append((" ".join(words), kind, value))
    return out
