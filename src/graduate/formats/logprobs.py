"""Soft labels: the teacher's probability for each label, read from the answer tokens' logprobs.

With ``teacher.logprobs`` the response carries, for every answer token, the log-probabilities of
the most likely alternatives (``choices[0].logprobs.content[i].top_logprobs``). The token that
carries the answer (the value of the JSON key, the regex group, or the label word) is found by
parsing the answer exactly as ``parse_answer`` does; each alternative at that position is mapped
to the label it would have started (``0`` -> ok, ``1`` -> bad); their probabilities are summed per
label and normalised. Labels absent from the alternatives get 0.

Multi-label formats read each label's own probability instead (``MultiLabelFormat.label_probabilities``:
P(true) of a ``json_booleans`` value; for ``label_list``/``json_list`` the alternatives where each
label starts, combined per label, see ``graduate.formats.label_starts``); those do not sum to 1.
"""

from __future__ import annotations

from typing import Any

from graduate.formats.base import label_of_piece, token_probability, word_norm
from graduate.formats.registry import answer_format
from graduate.spec import ParseSpec


def answer_tokens(response: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The per-token logprobs of the first choice, or None when the response has none."""
    if not isinstance(response, dict):
        return None
    choices = response.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return None
    logprobs = choices[0].get("logprobs") or {}
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not content or not all(isinstance(t, dict) and isinstance(t.get("token"), str) for t in content):
        return None
    return content


def answer_distribution(response: dict[str, Any] | None, spec: ParseSpec, labels: list[str]) -> dict[str, float] | None:
    """Probability per label from the answer token's alternatives; None without logprobs, or
    when the answer does not parse or its token cannot be found."""
    tokens = answer_tokens(response)
    if tokens is None:
        return None
    text = "".join(t["token"] for t in tokens)
    fmt = answer_format(spec, labels)
    if hasattr(fmt, "label_probabilities"):  # a label set: each label's own probability (not a distribution)
        return fmt.label_probabilities(tokens)
    parsed = fmt.parse(text)
    if parsed.label is None:
        return None
    offset = fmt.answer_offset(text, parsed)
    if offset is None or offset >= len(text):
        return None
    start = 0
    for tok in tokens:
        end = start + len(tok["token"])
        if end > offset:
            break
        start = end
    else:
        return None
    prefix = text[start:offset]  # what the answer token holds before the answer (e.g. a space)
    forms = fmt.raw_forms()
    fold = fmt.fold
    mass = {lab: 0.0 for lab in labels}
    alternatives = {alt["token"]: alt["logprob"] for alt in tok.get("top_logprobs") or [] if isinstance(alt, dict) and "token" in alt}
    alternatives.setdefault(tok["token"], tok.get("logprob"))
    core = prefix.strip()

    def answer_part(piece: str) -> str | None:
        if not core:
            return piece
        # The token also holds syntax before the answer (': 0'): alternatives must share it,
        # spacing aside (':0' is the same answer).
        piece = piece.lstrip()
        return piece[len(core) :] if piece.startswith(core) else None

    # Did the chosen token hold the whole answer ("okay"), or only its start ("ok" + "ay")? Only in
    # the first case is an alternative that spells a shorter label whole ("ok") that label.
    chosen = answer_part(tok["token"])
    whole = chosen is not None and word_norm(chosen, fold) in forms.get(parsed.label, [])
    for piece, logprob in alternatives.items():
        if logprob is None or not isinstance(piece, str):
            continue
        piece = answer_part(piece)
        if piece is None:
            continue
        lab = label_of_piece(piece, forms, fold, whole)
        if lab is not None:
            mass[lab] += token_probability(logprob)
    total = sum(mass.values())
    if total <= 0 or mass[parsed.label] <= 0:
        return None
    return {lab: mass[lab] / total for lab in labels}
