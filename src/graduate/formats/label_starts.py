"""Soft labels of a label set written as a list (``label_list``, ``json_list``), from logprobs.

In a list a label's absence is no token, so no token says "not this label". What the logprobs do
show is the alternatives at every position where the answer starts a label (the first label word,
and the first word after each separator or each ``, "``): which label the teacher might have started
there instead. Each alternative is mapped to the one label (or the none word, "no label") whose word
it begins, as a single-label answer's alternatives are (``base.label_of_piece``); syntax the token
holds before the word (``["``, a leading space, ``, ``) must be held by the alternative too. At one
position a label's probability is its alternatives' mass normalised over the alternatives that map
to a label or the none word; the positions are combined per label with a noisy-OR:
P(label in set) = 1 - prod over positions (1 - p_position(label)).

This is a lower bound more than an estimate: only the positions the teacher wrote are seen. Whether
the list would have gone on (a further label after the last one, or ``[]`` against ``["``) is a
token before or after a label start and is not read, so a label the teacher would have added as a
further item gets only the mass it had at the positions written; each later position is also
conditioned on the labels before it. A chosen label gets at least its own position's probability.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from graduate.formats import labelset
from graduate.formats.base import label_of_piece, token_probability, word_norm

# The key the none word's alternatives are counted under: never a task label (labelset.NONE).
NO_LABEL = labelset.NONE


def label_start_probabilities(
    tokens: list[dict[str, Any]], starts: list[tuple[int, str]], forms: dict[str, list[str]], labels: list[str]
) -> dict[str, float] | None:
    """Each label's probability of being in the set, from the alternatives at ``starts``: (offset in
    the tokens' joined text, the label written there or ``NO_LABEL`` for the none word). ``forms``:
    the words per label, ``NO_LABEL`` included when there is a none word, matched any case. None when
    there is no start, a start has no token or no ``top_logprobs``, or none of its alternatives (the
    written one included) maps to what was written there."""
    if not starts:
        return None
    text = "".join(t["token"] for t in tokens)
    token_starts, pos = [], 0
    for t in tokens:
        token_starts.append(pos)
        pos += len(t["token"])
    miss = {lab: 1.0 for lab in labels}  # per label: the chance that no position started it
    for at, written in starts:
        i = bisect_right(token_starts, at) - 1
        if i < 0 or at >= pos:
            return None
        tok = tokens[i]
        top = tok.get("top_logprobs")
        if not isinstance(top, list) or not top:
            return None
        prefix = text[token_starts[i] : at].strip()

        def word_part(piece: str) -> str | None:
            # what the alternative holds in place of the label word (after the shared syntax)
            piece = piece.strip()
            if not prefix:
                return piece
            return piece[len(prefix) :] if piece.startswith(prefix) else None

        alternatives = {a["token"]: a.get("logprob") for a in top if isinstance(a, dict) and isinstance(a.get("token"), str)}
        alternatives.setdefault(tok["token"], tok.get("logprob"))
        chosen = word_part(tok["token"])
        whole = chosen is not None and word_norm(chosen, True) in forms.get(written, [])
        mass: dict[str, float] = {}
        for piece, logprob in alternatives.items():
            word = word_part(piece)
            key = label_of_piece(word, forms, True, whole) if word is not None else None
            if key is not None:
                mass[key] = mass.get(key, 0.0) + token_probability(logprob)
        total = sum(mass.values())
        if total <= 0 or mass.get(written, 0.0) <= 0:
            return None
        for lab in labels:
            miss[lab] *= 1.0 - mass.get(lab, 0.0) / total
    return {lab: 1.0 - miss[lab] for lab in labels}
