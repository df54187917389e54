"""Redaction of personal data with typed placeholders, consistent within a record.

The finding is presidio's (``presidio-analyzer``, ``pip install 'graduate[privacy]'``): its pattern
recognizers with their validators, run directly, without an NLP model:

- ``email``: presidio's e-mail pattern, kept when the domain has a public suffix (tldextract's bundled
  snapshot; never fetched, so nothing leaves the machine);
- ``phone``: Google's libphonenumber through presidio (the ``phone_regions``' national formats, and
  any number written with its +country code);
- ``card``: 12-19 digit card numbers that pass the Luhn check;
- ``iban``: IBANs of the known countries whose mod-97 checksum holds;
- ``ip``: IPv4 and IPv6 addresses;
- your own ``patterns`` (regular expressions), each its own placeholder name.

Names, street addresses and other free-text personal data need a language model (presidio's spaCy
NER) and are not found: say so to whoever relies on this. Overlapping finds keep the longest (ties:
``PRECEDENCE``, then your patterns). The same value gets the same placeholder within one record (a request and its
answer, ``<EMAIL_1>`` in both); numbering restarts in the next record, so placeholders never link
records. A placeholder is never redacted again.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from typing import Any, Callable, Iterable

from graduate.errors import PrivacyError
from graduate.spec.privacy import PrivacySpec

PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")
# Overlapping finds of equal length: the more specific type wins (an IP address also reads as a
# phone number to libphonenumber; a card or IBAN holds digit runs that do too).
PRECEDENCE = ("email", "iban", "card", "ip", "phone")
NAMES = {"email": "EMAIL", "phone": "PHONE", "card": "CARD", "iban": "IBAN", "ip": "IP"}
# A recogniser's score below this is a weak guess presidio itself would not report by default.
MIN_SCORE = {"phone": 0.0, "ip": 0.0}


Span = tuple[int, int, str]  # start, end, placeholder name
MAX_PASSES = 4


def _presidio_finders(types: Iterable[str], regions: list[str]) -> list[tuple[str, Callable[[str], list[tuple[int, int]]]]]:
    try:
        import tldextract
        from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, EmailRecognizer, IbanRecognizer, IpRecognizer, PhoneRecognizer
    except ImportError:
        raise PrivacyError("privacy.redact needs presidio: pip install 'graduate[privacy]'") from None

    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # the bundled public-suffix snapshot only

    class OfflineEmail(EmailRecognizer):  # type: ignore[misc]
        def validate_result(self, pattern_text: str) -> bool:
            return offline(pattern_text.rsplit("@", 1)[-1]).suffix != ""

    build = {
        "email": OfflineEmail,
        "phone": lambda: PhoneRecognizer(supported_regions=tuple(regions)),
        "card": CreditCardRecognizer,
        "iban": IbanRecognizer,
        "ip": IpRecognizer,
    }
    out = []
    for t in types:
        rec = build[t]()
        floor = MIN_SCORE.get(t, 0.0)

        def find(text: str, rec: Any = rec, floor: float = floor) -> list[tuple[int, int]]:
            return [(r.start, r.end) for r in rec.analyze(text, entities=rec.supported_entities, nlp_artifacts=None) if r.score > floor]

        out.append((NAMES[t], find))
    return out


class Redactor:
    """Finds personal data in text (``spans``) and replaces it (``record().text``), per a PrivacySpec."""

    def __init__(self, spec: PrivacySpec):
        self.spec = spec
        types = [t for t in PRECEDENCE if t in spec.types]
        self.finders = _presidio_finders(types, spec.phone_regions)
        for name, pattern in spec.patterns.items():
            compiled = re.compile(pattern)
            self.finders.append((name, lambda text, rx=compiled: [(m.start(), m.end()) for m in rx.finditer(text) if m.end() > m.start()]))
        # A request is scanned again when its answer is written (to number the answer's placeholders
        # like the request's): the finds of recent texts are kept.
        self._cached = functools.lru_cache(maxsize=2048)(self._spans)

    def spans(self, text: str) -> list[Span]:
        """Non-overlapping finds in text order (overlaps: the longest wins; ties: the earlier type)."""
        if not text:
            return []
        return list(self._cached(text))

    def _spans(self, text: str) -> tuple[Span, ...]:
        return tuple(self._find(text))

    def _find(self, text: str) -> list[Span]:
        protected = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
        found: list[tuple[int, int, int, str]] = []
        for rank, (name, find) in enumerate(self.finders):
            found += [(s, e, rank, name) for s, e in find(text)]
        chosen: list[Span] = []
        taken = list(protected)
        for s, e, _, name in sorted(found, key=lambda f: (-(f[1] - f[0]), f[2], f[0])):
            if any(s < te and ts < e for ts, te in taken):
                continue
            taken.append((s, e))
            chosen.append((s, e, name))
        return sorted(chosen)

    def record(self, *seed: Any) -> "RecordRedaction":
        """A redaction of one record; ``seed``: values (unredacted) whose finds are numbered first,
        e.g. the request when only its answer is being written, so both use the same placeholders."""
        rec = RecordRedaction(self)
        for value in seed:
            rec.json(value, count=False)
        return rec


class RecordRedaction:
    """One record's placeholders: the same value gets the same placeholder in every field."""

    def __init__(self, redactor: Redactor):
        self.redactor = redactor
        self.numbers: dict[tuple[str, str], int] = {}
        self.next: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()

    def text(self, text: str | None, *, count: bool = True) -> str | None:
        """The text with every find replaced; again on the result until nothing is found (a
        replacement can end a run of characters that hid a value: ``0@0.al<IBAN_1>``)."""
        if not text or not isinstance(text, str):
            return text
        for _ in range(MAX_PASSES):
            spans = self.redactor.spans(text)
            if not spans:
                break
            text = self._replace(text, spans, count)
        return text

    def _replace(self, text: str, spans: list[Span], count: bool) -> str:
        out, last = [], 0
        for s, e, name in spans:
            value = text[s:e]
            key = (name, value)
            if key not in self.numbers:
                self.next[name] += 1
                self.numbers[key] = self.next[name]
            out.append(text[last:s])
            out.append(f"<{name}_{self.numbers[key]}>")
            if count:
                self.counts[name] += 1
            last = e
        out.append(text[last:])
        return "".join(out)

    def json(self, value: Any, *, count: bool = True) -> Any:
        """Every string inside a JSON value redacted (dict keys kept)."""
        if isinstance(value, str):
            return self.text(value, count=count)
        if isinstance(value, dict):
            return {k: self.json(v, count=count) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v, count=count) for v in value]
        return value

    def tally(self) -> dict[str, int] | None:
        """What this record's redactions replaced, per placeholder name (None: nothing)."""
        return dict(self.counts) if self.counts else None


def redactor_for(spec: PrivacySpec) -> Redactor | None:
    """The project's redactor, or None when ``privacy.redact`` is off."""
    return Redactor(spec) if spec.redact else None


def input_redactor_for(spec: PrivacySpec) -> Redactor | None:
    """The redaction of item texts before they are stored and sent to the teacher, or None when
    ``privacy.redact_teacher_input`` is off."""
    return Redactor(spec) if spec.redact_teacher_input else None


def redact_text(redactor: Redactor | None, text: str) -> str:
    """``text`` as one record, redacted (unchanged without a redactor)."""
    return text if redactor is None else (redactor.record().text(text) or text)


def redact_messages(redactor: Redactor, messages: list[Any]) -> list[Any]:
    """Chat messages with every string content (and text part) redacted as one record."""
    rec = redactor.record()
    return [({**m, "content": rec.json(m.get("content"))} if isinstance(m, dict) else m) for m in messages]
