"""`privacy:` in graduate.yaml: what is redacted before the call log and the traffic log store it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from graduate.spec.base import _Model

PiiType = Literal["email", "phone", "card", "iban", "ip"]
PII_TYPES: tuple[str, ...] = ("email", "phone", "card", "iban", "ip")


class PrivacySpec(_Model):
    """Personal data kept out of the store: typed placeholders (``<EMAIL_1>``) replace e-mail
    addresses, phone numbers, card numbers (Luhn-checked), IBANs (checksum), IP addresses and
    your own patterns in every request, answer and traffic row graduate writes."""

    redact: bool = Field(False, description="Redact personal data in what the call log (graduate label, import, proxy, the server's teacher calls) and the traffic log store.")
    types: list[PiiType] = Field(default_factory=lambda: list(PII_TYPES), description="Which kinds of personal data to redact.")
    patterns: dict[str, str] = Field(
        default_factory=dict,
        description="Your own patterns: {NAME: regex}; each match becomes <NAME_n>, e.g. {CUSTOMER: 'CUST-\\d{6}'}.",
    )
    phone_regions: list[str] = Field(
        default_factory=lambda: ["US", "GB", "DE", "FR", "IL", "IN", "CA", "BR"],
        description="Regions whose national phone formats are recognised (ISO 3166 codes); numbers with a +country prefix are recognised anywhere.",
    )

    redact_teacher_input: bool = Field(
        False,
        description="Also redact every item's text before it is stored and sent to the teacher (data files, graduate label, the proxy's "
        "forwarded prompts, the server's teacher calls). Off by default: the teacher then sees placeholders, and recorded answers of "
        "items that held personal data no longer match their (redacted) requests.",
    )
    retention_days: int | None = Field(
        None, ge=0, description="Days raw requests and answers are kept; `graduate privacy purge` drops older ones (labels, hashes and figures stay). None: kept."
    )

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, pattern in patterns.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", name):
                raise ValueError(f"pattern name {name!r}: use letters, digits and _ (it becomes the placeholder <{name.upper()}_1>)")
            if name.upper() in {t.upper() for t in PII_TYPES}:
                raise ValueError(f"pattern name {name!r} is a built-in type; choose another name")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {name}: {pattern!r} is not a regular expression ({exc})") from None
            if compiled.match(""):
                raise ValueError(f"pattern {name}: {pattern!r} matches the empty string; it must match at least one character")
        return {name.upper(): pattern for name, pattern in patterns.items()}

    @field_validator("phone_regions")
    @classmethod
    def _regions(cls, regions: list[str]) -> list[str]:
        bad = [r for r in regions if not re.fullmatch(r"[A-Za-z]{2}", r)]
        if bad:
            raise ValueError(f"phone_regions {bad}: use two-letter region codes such as US, GB, DE")
        return [r.upper() for r in regions]
