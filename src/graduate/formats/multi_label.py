"""Multi-label answers: a set of the task's labels per answer, in one of three spellings.

- ``label_list``: label words joined by ``separator`` (``care, equality``); words match whole,
  any case, through ``words`` (default: the label names). A comma as CJK or Arabic text writes it
  (``，`` ``、`` ``،``) is read as the comma of a separator.
- ``json_list``: a JSON list of labels (``["care", "equality"]``), under ``key`` when given (with
  white space around it or without).
- ``json_booleans``: a JSON object ``{"care": true, "equality": false, ...}``, under ``key`` when
  given; labels missing from it are false.

``none`` names the answer that means no label applies (a task label of that name is a label). An
answer with an unknown label word, no label, or more than ``max_labels`` is a parse failure that
says which word or how many, never a guess. The parsed label is the set's canonical string
(``graduate.formats.labelset``: ``decode`` gives the set back).

Soft labels from logprobs (``label_probabilities``): with ``json_booleans`` every label's decision is
one token, its ``true``/``false`` value, so each label's probability is P(true) / (P(true) + P(false))
from that token's alternatives. In ``label_list`` and ``json_list`` answers a label's absence is no
token at all; what is read there is the alternatives at each position where the answer starts a
label word (which label might have started there), combined per label with a noisy-OR
(``graduate.formats.label_starts``). Only the positions the teacher wrote are seen, so those figures
err low for a label it did not write. ``answer_offset`` is None for every kind. ``value_pieces``
cuts a rendered ``json_booleans`` answer at its values, so the server can write such logprobs itself
(not the list kinds: their reading cannot give back an arbitrary probability per label).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from graduate.formats import labelset
from graduate.formats.base import ParsedAnswer, empty, fenced_spans, keys_named, literal, token_probability
from graduate.formats.label_starts import NO_LABEL, label_start_probabilities
from graduate.spec import ParseSpec



# A comma as text in Chinese or Japanese (full-width, ideographic, their small forms) or in Arabic
# writes it: a separator with a comma is read with each of these in its place too.
_COMMAS = ("\uff0c", "\u3001", "\ufe50", "\ufe51", "\u060c")


# A JSON or Python string literal; one followed by ':' and a list (a key's list).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', re.DOTALL)
_KEY_LIST = re.compile(r"(" + _STRING.pattern + r")\s*:\s*\[", re.DOTALL)
# What word_key strips at a word's edges besides white space and format characters.
_EDGE = "\"'.`*"


def _json_value(text: str) -> Any:
    """The first JSON (or Python literal) list or object in the answer, code fences allowed."""
    found = _json_located(text)
    return found[0] if found is not None else None


def _json_located(text: str) -> tuple[Any, int, int] | None:
    """``_json_value`` with where its text starts and ends in ``text`` (end exclusive)."""
    for at, cand in fenced_spans(text):
        # the outermost value first: whichever bracket opens earlier
        for opener, closer in sorted((("[", "]"), ("{", "}")), key=lambda oc: (cand.find(oc[0]) == -1, cand.find(oc[0]))):
            start, end = cand.find(opener), cand.rfind(closer)
            if start == -1 or end <= start:
                continue
            value = literal(cand[start : end + 1])
            if value is not None:
                return value, at + start, at + end + 1
    return None


def _number(word: str) -> float | None:
    try:
        return float(word)
    except ValueError:
        return None


def word_key(word: str) -> str:
    """How a label word is matched: any case, in one Unicode form (NFC: ``café`` decomposed is
    ``café``), without the quotes, dots, backticks and asterisks an LLM puts around words
    (``"Care."``, ```care```, ``**care**``) or invisible format characters at its edges (a BOM, a
    zero-width space). Label names go through it too, so a label such as ``n.a.`` reads back."""
    word, before = unicodedata.normalize("NFC", word), None
    while word != before:
        before = word
        word = word.strip().strip("\"'.`*")
        while word and unicodedata.category(word[0]) == "Cf":
            word = word[1:]
        while word and unicodedata.category(word[-1]) == "Cf":
            word = word[:-1]
    return word.lower()


class MultiLabelFormat:
    fold = True

    def __init__(self, spec: ParseSpec, labels: list[str]):
        self.spec, self.labels = spec, list(labels)
        words = spec.words or {lab: [lab] for lab in labels}
        self.lookup: dict[str, str] = {}
        for lab in labels:
            for w in words.get(lab, [lab]):
                self.lookup[word_key(w)] = lab
        self.none = word_key(spec.none) if spec.none and word_key(spec.none) not in self.lookup else None
        # The readings of a label_list answer, each a set of separators, tried in turn.
        sep = spec.separator
        self._readings = [[sep]] + ([[sep.strip()]] if sep.strip() and sep.strip() != sep else [])
        if "," in sep:
            self._readings.append(sorted({s.replace(",", c) for r in self._readings for s in r for c in (",", *_COMMAS)}, key=len, reverse=True))

    # -- reading ---------------------------------------------------------------------------
    def _from_words(self, items: list[Any]) -> ParsedAnswer:
        found: list[str] = []
        # the words given besides the none word ("none," and "none, none" give none other)
        others = [i for i in items if not isinstance(i, str) or word_key(i) not in ("", self.none)]
        for item in items:
            if not isinstance(item, str):
                return ParsedAnswer(None, None, f"not a label word: {item!r}")
            word = word_key(item)
            if not word:
                continue
            if word == self.none:
                if others:
                    return ParsedAnswer(None, None, f"{self.spec.none!r} (no label) given with other labels")
                return self._done([])
            lab = self.lookup.get(word)
            if lab is None:
                return ParsedAnswer(None, None, f"unknown label word {item.strip()[:60]!r}")
            found.append(lab)
        if not found:
            return ParsedAnswer(None, None, "no label in the answer" + (f" (say {self.spec.none!r} for none)" if self.spec.none else ""))
        return self._done(found)

    @staticmethod
    def _split(seps: list[str], text: str) -> list[str]:
        return re.split("|".join(map(re.escape, seps)) + r"|\n", text)

    def _done(self, found: list[str]) -> ParsedAnswer:
        chosen = sorted(set(found), key=self.labels.index)
        if self.spec.max_labels is not None and len(chosen) > self.spec.max_labels:
            return ParsedAnswer(None, None, f"{len(chosen)} labels, at most {self.spec.max_labels} allowed")
        value = labelset.encode(chosen, self.labels)
        return ParsedAnswer(value, value)

    def parse(self, content: str | None) -> ParsedAnswer:
        bad = empty(content)
        if bad is not None:
            return bad
        text = (content or "").strip()
        kind = self.spec.kind
        if kind == "label_list":
            return self._read_list(text)[0]
        value = _json_value(text)
        if self.spec.key is not None:
            keys = keys_named(value, self.spec.key) if isinstance(value, dict) else []
            if not keys:
                return ParsedAnswer(None, None, f"no key {self.spec.key!r} in a JSON object")
            read = [self._read(value[k]) for k in keys]
            other = next((k for k, got in zip(keys, read) if got.label != read[0].label), None)
            if other is not None:  # {"labels": [...], "labels ": [...]}: neither is guessed at
                return ParsedAnswer(None, None, f"keys {keys[0]!r} and {other!r} both give {self.spec.key!r}, with different values")
            return read[0]
        return self._read(value)

    def _read_list(self, text: str) -> tuple[ParsedAnswer, list[str]]:
        """A ``label_list`` answer's set and the separators of the reading that gave it."""
        # The separator as written, then other readings, each taken only when every piece is
        # then a label word (no label holds what they split at): " | " as written
        # "care|equality" splits at its visible part, a comma as CJK or Arabic text writes it
        # ("care\uff0cequality") at that comma too. A failure names the pieces of the first.
        # Another reading is tried only where the answer holds a separator of its own: "x, y" (a
        # none word holding the comma) never reads as one word through a comma it does not hold.
        first = self._from_words(self._split(self._readings[0], text))
        if first.label is not None:
            return first, self._readings[0]
        for seps in self._readings[1:]:
            if any(s in text for s in seps if s not in self._readings[0]):
                got = self._from_words(self._split(seps, text))
                if got.label is not None:
                    return got, seps
        return first, self._readings[0]

    def _read(self, value: Any) -> ParsedAnswer:
        """The label set of the answer's JSON list or object (under ``key``, when given)."""
        kind = self.spec.kind
        if value is None and self.spec.key is not None:
            return ParsedAnswer(None, None, f"no key {self.spec.key!r} in a JSON object")
        if kind == "json_list":
            if not isinstance(value, list):
                return ParsedAnswer(None, None, "no JSON list in the answer")
            return self._from_words(value) if value else self._done([])
        if not isinstance(value, dict):
            return ParsedAnswer(None, None, "no JSON object of label: true|false in the answer")
        found = []
        said: dict[str, tuple[Any, bool]] = {}
        for k, v in value.items():
            lab = self.lookup.get(word_key(str(k)))
            if lab is None:
                return ParsedAnswer(None, None, f"unknown label {str(k)[:60]!r}")
            # true/false, 1/0 or their words; any other number (2, -1) is no yes or no
            word = str(v).strip().lower() if not isinstance(v, bool) else ("true" if v else "false")
            word = {1.0: "1", 0.0: "0"}.get(_number(word), word)  # 1.0 is 1, as json_key reads it
            if word not in ("true", "false", "yes", "no", "1", "0"):
                return ParsedAnswer(None, None, f"label {k!r}: {v!r} is not true or false")
            yes = word in ("true", "yes", "1")
            if lab in said and said[lab][1] != yes:  # {"care": true, "Care": false}: neither is guessed at
                return ParsedAnswer(None, None, f"label {lab!r} is both {said[lab][0]!r} and {k!r}, true and false")
            said[lab] = (k, yes)
            if yes:
                found.append(lab)
        return self._done(found)

    # -- logprobs ----------------------------------------------------------------------------
    def answer_offset(self, text: str, parsed: ParsedAnswer) -> int | None:
        return None

    def label_probabilities(self, tokens: list[dict[str, Any]]) -> dict[str, float] | None:
        """Each label's probability of being in the set, from the answer tokens' logprobs.

        json_booleans: each label's P(true) at its value token (normalised over true/false); a label
        the answer leaves out keeps its parsed value (0). None when the answer does not parse, or
        when a value token has neither true nor false among its alternatives.

        label_list, json_list: the alternatives at each position where the answer starts a label,
        combined per label with a noisy-OR (``graduate.formats.label_starts``: only the positions
        written are seen, so it errs low). None when the answer does not parse or names no label
        word (``[]``), or a label-start token has no ``top_logprobs`` or none that maps to what it
        wrote."""
        text = "".join(t["token"] for t in tokens)
        if self.spec.kind != "json_booleans":
            starts = self._label_starts(text)
            if not starts:
                return None
            forms: dict[str, list[str]] = {lab: [] for lab in self.labels}
            for word, lab in self.lookup.items():
                forms[lab].append(word)
            if self.none is not None:
                forms[NO_LABEL] = [self.none]
            return label_start_probabilities(tokens, starts, forms, self.labels)
        parsed = self.parse(text)
        if parsed.label is None:
            return None
        chosen = labelset.decode(parsed.label, self.labels) or frozenset()
        out = {lab: float(lab in chosen) for lab in self.labels}
        starts, pos = [], 0
        for t in tokens:
            starts.append(pos)
            pos += len(t["token"])
        for m in re.finditer(r'("(?:[^"\\]|\\.)+"|\'(?:[^\'\\]|\\.)+\')\s*:\s*(true|false)\b', text, flags=re.IGNORECASE):
            key = literal(m.group(1), str)  # escapes decoded: \u00e9 (JSON), \xe9 or \' (a Python literal)
            if key is None:
                continue
            lab = self.lookup.get(word_key(key))
            if lab is None:
                continue
            at = m.start(2)
            i = max(k for k, s0 in enumerate(starts) if s0 <= at)
            tok = tokens[i]
            prefix = text[starts[i] : at].strip()  # syntax the value token holds before the value (': ')
            mass = {"t": 0.0, "f": 0.0}
            alternatives = {a["token"]: a.get("logprob") for a in tok.get("top_logprobs") or [] if isinstance(a, dict) and isinstance(a.get("token"), str)}
            alternatives.setdefault(tok["token"], tok.get("logprob"))
            for piece, logprob in alternatives.items():
                if logprob is None:
                    continue
                piece = piece.strip()
                if prefix:
                    if not piece.startswith(prefix):
                        continue
                    piece = piece[len(prefix) :].strip()
                word = piece.lower().rstrip(",}] \n")
                if word and "true".startswith(word):
                    mass["t"] += token_probability(logprob)
                elif word and "false".startswith(word):
                    mass["f"] += token_probability(logprob)
            if mass["t"] + mass["f"] <= 0:
                return None
            out[lab] = mass["t"] / (mass["t"] + mass["f"])
        return out

    def _label_starts(self, text: str) -> list[tuple[int, str]] | None:
        """Where in ``text`` each label word of a ``label_list``/``json_list`` answer starts, with
        its label (``NO_LABEL`` for the none word), in the answer's order; None when the answer
        does not parse or a word cannot be placed."""
        if self.parse(text).label is None:
            return None
        starts: list[tuple[int, str]] = []
        if self.spec.kind == "label_list":
            lead = len(text) - len(text.lstrip())
            body = text.strip()
            _, seps = self._read_list(body)
            pos = 0
            # the pieces exactly as _split cuts them (re.split and finditer take the same matches)
            for cut in [*re.finditer("|".join(map(re.escape, seps)) + r"|\n", body), None]:
                end = cut.start() if cut is not None else len(body)
                self._place(body[pos:end], lead + pos, text, starts)
                pos = cut.end() if cut is not None else pos
            return starts
        located = _json_located(text)
        if located is None:
            return None
        value, begin, end = located  # only the value parsed is read: not prose before it, nor another fence
        if self.spec.key is not None:
            key = keys_named(value, self.spec.key)[0]
            value = value[key]
            # the list under the key: after the last key of that name followed by a list (a JSON
            # reader keeps the last of two same keys)
            openers = [m for m in _KEY_LIST.finditer(text, begin, end) if literal(m.group(1), str) == key]
            opener = openers[-1] if openers else None
        else:
            opener = re.compile(r"\[").search(text, begin, end)
        if opener is None:
            return None
        found = _STRING.finditer(text, opener.end(), end)
        for item in value:
            m = next((m for m in found if literal(m.group(0), str) == item), None)
            if m is None:
                return None
            self._place(item, m.start() + 1, text, starts)
        return starts

    def _place(self, word: str, at: int, text: str, starts: list[tuple[int, str]]) -> None:
        """Adds where ``word`` (written from ``at`` in ``text``) starts its label word, if it has one:
        past the white space, quotes and invisible characters that ``word_key`` strips."""
        key = word_key(word)
        if not key:
            return
        while at < len(text) and (text[at] in _EDGE or text[at].isspace() or unicodedata.category(text[at]) == "Cf"):
            at += 1
        starts.append((at, self.lookup.get(key, NO_LABEL)))

    def value_pieces(self, label: str) -> list[tuple[str, str | None]] | None:
        """``json_booleans``: the rendered answer cut into pieces, each label's ``true``/``false``
        value a piece of its own tagged with its label (syntax between values untagged); joined, the
        pieces are ``render(label)[0]``. None for the other kinds (a label's absence is no token)."""
        if self.spec.kind != "json_booleans":
            return None
        chosen = labelset.decode(label, self.labels) or frozenset()
        words = self.spec.words
        pieces: list[tuple[str, str | None]] = []
        syntax = "{" + (json.dumps(self.spec.key) + ": {" if self.spec.key is not None else "")
        for i, lab in enumerate(self.labels):
            syntax += (", " if i else "") + json.dumps((words.get(lab) or [lab])[0]) + ": "
            pieces += [(syntax, None), (json.dumps(lab in chosen), lab)]
            syntax = ""
        pieces.append(("}" + ("}" if self.spec.key is not None else ""), None))
        if "".join(p for p, _ in pieces) != self.render(label)[0]:  # two words map to one key, say
            return None
        return pieces

    def raw_forms(self) -> dict[str, list[str]]:
        return {lab: [] for lab in self.labels}

    # -- writing -----------------------------------------------------------------------------
    def render(self, label: str) -> list[str]:
        chosen = sorted(labelset.decode(label, self.labels) or (), key=self.labels.index)
        words = self.spec.words
        names = [(words.get(lab) or [lab])[0] for lab in chosen]
        kind = self.spec.kind
        if kind == "label_list":
            if not names:
                return [self.spec.none] if self.spec.none else []
            sep = self.spec.separator
            return [f"{sep} ".join(names) if sep == "," else sep.join(names)]
        if kind == "json_list":
            body: Any = names
        else:
            body = {(words.get(lab) or [lab])[0]: lab in chosen for lab in self.labels}
        if self.spec.key is not None:
            body = {self.spec.key: body}
        return [json.dumps(body)]
