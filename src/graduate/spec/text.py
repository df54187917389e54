"""Whether a text shows nothing. In the spec layer, below those that ask: the loader (data), the
server (serve) and ``graduate predict``'s reader (students) must all call the same texts blank."""

from __future__ import annotations

import re
import unicodedata

# Characters that draw nothing (Unicode's Default_Ignorable_Code_Point outside the Cf category, which
# is tested as a whole): fillers a text made "only of nothing" uses, variation selectors, tag space;
# and the blank Braille pattern U+2800, drawn as a space.
_INVISIBLE = re.compile("[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2800\u3164\ufe00-\ufe0f\uffa0\U000e0000-\U000e0fff]")


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: only whitespace, control and format characters (zero-width
    space U+200B, word joiner U+2060, BOM U+FEFF, bidi marks ...) and other invisible ones. Such a
    text passes ``not text.strip()`` and would become an item nobody can read."""
    return all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zs", "Zl", "Zp") or _INVISIBLE.match(c) for c in text)
