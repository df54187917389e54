"""Items the teacher writes (practices 2, 5, 8): the prompts, reading its answers, and keeping only
what is new.

- ``synth``: from seed examples of a target (a label, a tag slice or a term), the teacher writes
  new texts of the same kind, Self-Instruct style.
- ``paraphrase``: the teacher rewrites an item in other words (the copies are labelled again).

Generated texts are kept only when they are new: not stored already, not a near copy of a pool
item or of another generated text (TF-IDF cosine at or above ``NEAR_DUPLICATE``). A written line
that is a label of the task (``label_matcher``) is no text at all. ``diversity`` measures how close
the kept texts sit to the pool, next to how close pool items sit to each other. Seeds and items are
drawn by ``Draws``, whatever order the pool is in.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from graduate.data.text import text_hash
from graduate.formats import labelset
from graduate.formats.base import literal
from graduate.formats.registry import answer_format
from graduate.spec import ParseSpec

NEAR_DUPLICATE = 0.9
MAX_PER_CALL = 10
MAX_TEXT_CHARS = 2000

PARAPHRASE_PROMPT = (
    "Rewrite the text below {n} times in different words: keep its meaning, its tone and its language, change the wording. "
    "Answer with a numbered list, one rewrite per line, and nothing else.\n\nText: {text}"
)
SYNTH_PROMPT = (
    "Here are examples of texts{what}:\n\n{text}\n\n"
    "Write {n} new texts of the same kind{what}: realistic, each one different from the examples and from the others in topic and wording. "
    "Answer with a numbered list, one text per line, and nothing else."
)
_NUMBERED = re.compile(r"^\s*(?:\d{1,3}\s*[.):\-]|[-*•])\s*")


def generation_prompt(template: str, n: int, what: str = "") -> str:
    """A generation prompt for the teacher's spec: ``{text}`` stays the placeholder."""
    return template.replace("{n}", str(n)).replace("{what}", what)


def seed_block(texts: Sequence[str]) -> str:
    return "\n".join(f"{i}. {' '.join(t.split())}" for i, t in enumerate(texts, start=1))


def parse_list(content: str | None) -> list[str]:
    """The texts of a numbered (or bulleted) list answer, one per line; quotes around a line removed.
    When some lines are numbered, only those are texts: a model's "Here are 5 new texts:" before the
    list, or a remark after it, is not one."""
    lines = [line.strip() for line in (content or "").splitlines() if line.strip()]
    if any(_NUMBERED.match(line) for line in lines):
        lines = [line for line in lines if _NUMBERED.match(line)]
    out = []
    for line in lines:
        line = _NUMBERED.sub("", line).strip()
        if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'“”":
            line = line[1:-1].strip()
        if line.startswith("“") and line.endswith("”"):
            line = line[1:-1].strip()
        if 3 <= len(line) <= MAX_TEXT_CHARS:
            out.append(line)
    return out


# "Label: toxic", "Labels - care, equality": a label said as one, not a text.
_LABEL_PREFIX = re.compile(r"^(?:labels?|answer|category|class|classification)\s*[:=\-]\s*")
_LABEL_SEPARATORS = ",;/|&"


def _bare(piece: str) -> str:
    """``piece`` in one case and Unicode form, without the punctuation, quotes, brackets, markup and
    invisible characters around it (inner ones stay: ``non-toxic``), its spaces collapsed."""
    piece, before = " ".join(unicodedata.normalize("NFC", piece).split()).casefold(), None
    while piece != before:
        before = piece
        piece = piece.strip().strip("`*~^")
        while piece and unicodedata.category(piece[0])[0] in "PC":
            piece = piece[1:]
        while piece and unicodedata.category(piece[-1])[0] in "PC":
            piece = piece[:-1]
    return piece


def _spoken(text: str) -> bool:
    """Whether ``text`` holds an exclamation or question mark (any script's: "!", "？", "¿", "؟")."""
    return any(unicodedata.category(c) == "Po" and any(w in unicodedata.name(c, "") for w in ("EXCLAMATION", "QUESTION", "INTERROBANG")) for c in text)


# A smiley of punctuation alone (":)", ";-)", ":(", ":/"), standing apart: ``_bare`` strips it as the
# punctuation about a word, and "Ok :)" was the label ok.
_EMOTICON = re.compile(r"(?<!\S)[:;=][-'^]?[()\[\]/\\|]+(?!\S)")


def label_matcher(parse: ParseSpec, labels: Sequence[str]) -> Callable[[str], bool]:
    """A test of a written line: is it a label of the task rather than a text (a teacher asked to
    write inputs that answers as if labelling)? Kept narrow, so no real text is lost: the line, bare
    (``_bare``) and without a leading "Label:", is one label word (a label, a word or raw value that
    means one, the none answer, ``(none)``) or label words joined by a separator (``care, equality``),
    or the whole line is an answer object or list the task's own format reads (``{"is_bad": 1}``).
    Label words inside a sentence ("you are toxic") leave it a text, and so does an exclamation or
    question mark: an answer naming a label neither exclaims nor asks, but "Thanks!" and "Help?" are
    what an intent task's users say; so does a smiley ("Ok :)")."""
    words = {*labels, *(w for ws in parse.words.values() for w in ws), *parse.values, labelset.NONE}
    if parse.none:
        words.add(parse.none)
    bare_words = {_bare(w) for w in words} - {""}
    spoken_words = any(_spoken(w) for w in words)  # a label word that holds "!" or "?" itself: the mark says nothing
    separators = _LABEL_SEPARATORS + (parse.separator.strip() if parse.multi_label else "")
    split = re.compile("|".join(re.escape(c) for c in dict.fromkeys(separators) if c))
    fmt = answer_format(parse, list(labels))

    def is_label(line: str) -> bool:
        flat = line.strip()
        if flat[:1] in "{[" and flat[-1:] in "}]" and literal(flat, (dict, list)) is not None and fmt.parse(flat).label is not None:
            return True
        if _spoken(line) and not spoken_words or _EMOTICON.search(line):
            return False
        said = _bare(_LABEL_PREFIX.sub("", _bare(line)))
        if said in bare_words:
            return True
        pieces = [_bare(p) for p in split.split(said)]
        return len(pieces) > 1 and all(p in bare_words for p in pieces if p) and any(pieces)

    return is_label


class Draws:
    """Seeded samples of items that do not depend on the items' order: under a salt each item gets
    a key from its text's hash alone, and a sample is the items of least key. The same pool in
    another order gives the same sample; a row added or taken out changes a sample only where it
    is (or would be) in it. Items of the same text tie: give them in one fixed order."""

    def __init__(self, hashes: Sequence[str]):
        # the items' hex text hashes (graduate.data.text.text_hash): their first 64 bits
        self._ids = np.array([int(h[:16], 16) for h in hashes], dtype=np.uint64)

    def take(self, salt: str, k: int) -> list[int]:
        """The positions of the ``k`` items of least key under ``salt``, least first."""
        s = np.uint64(int.from_bytes(hashlib.blake2b(salt.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"))
        # splitmix64's finaliser over (text hash xor salt): every item's key in one array operation,
        # so a pool of many thousands is drawn from again for each writing call at no real cost
        z = self._ids ^ s
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        return [int(i) for i in np.argsort(z, kind="stable")[:k]]


@dataclass
class Kept:
    texts: list[str]
    origin: list[int]  # per kept text: the index of the generated text it is
    stored_already: int = 0
    near_pool: int = 0
    near_each_other: int = 0


def keep_new(generated: Sequence[str], pool: Sequence[str], stored_hashes: set[str]) -> Kept:
    """The generated texts that are new: not stored, not a near copy of the pool or of each other."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    out = Kept([], [])
    candidates: list[int] = []
    seen: set[str] = set()
    for i, t in enumerate(generated):
        h = text_hash(t)
        if h in stored_hashes or h in seen:
            out.stored_already += 1
            continue
        seen.add(h)
        candidates.append(i)
    if not candidates:
        return out
    vec = TfidfVectorizer(min_df=1, sublinear_tf=True).fit(list(pool) + [generated[i] for i in candidates])
    new = vec.transform([generated[i] for i in candidates])
    if len(pool):
        to_pool = np.asarray((new @ vec.transform(list(pool)).T).max(axis=1).todense()).ravel()
    else:
        to_pool = np.zeros(len(candidates))
    kept_rows: list[int] = []
    for row, i in enumerate(candidates):
        if to_pool[row] >= NEAR_DUPLICATE:
            out.near_pool += 1
            continue
        if kept_rows and float((new[row] @ new[kept_rows].T).max()) >= NEAR_DUPLICATE:
            out.near_each_other += 1
            continue
        kept_rows.append(row)
        out.texts.append(generated[i])
        out.origin.append(i)
    return out


@dataclass
class Diversity:
    new_to_pool: float  # mean cosine of each kept text to its nearest pool item
    pool_to_pool: float  # the same for pool items among themselves (the baseline)


def diversity(new: Sequence[str], pool: Sequence[str], *, sample: int = 2000, seed: int = 0) -> Diversity | None:
    """How close the new texts sit to the pool, next to how close pool items sit to each other:
    new texts closer than the pool's own spacing add little that is new."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not new or len(pool) < 2:
        return None
    rng = np.random.default_rng(seed)
    pool = list(pool)
    if len(pool) > sample:
        pool = [pool[i] for i in rng.choice(len(pool), size=sample, replace=False)]
    vec = TfidfVectorizer(min_df=1, sublinear_tf=True).fit(pool + list(new))
    p = vec.transform(pool)
    n = vec.transform(list(new))
    new_to_pool = float(np.asarray((n @ p.T).max(axis=1).todense()).mean())
    pp = (p @ p.T).tolil()
    pp.setdiag(0)
    pool_to_pool = float(np.asarray(pp.tocsr().max(axis=1).todense()).mean())
    return Diversity(new_to_pool, pool_to_pool)
