"""Name folding and normalisation: the one definition that spans, filters, resolution, metrics and
lookup all compare names by."""

from __future__ import annotations

import re
import unicodedata

ARTICLES = frozenset({"the", "a", "an"})


def squash(text: str) -> str:
    """Whitespace normalization: runs of whitespace become one space, ends stripped."""
    return " ".join(text.split())


def fold(text: str) -> str:
    """``text`` case-folded with its accents dropped."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def normalize(name: str) -> str:
    """Case-, accent-, punctuation- and article-insensitive form of a name."""
    words = re.sub(r"[^\w]+", " ", fold(name)).split()
    while len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    return " ".join(words)


def is_alias(short: str, long: str) -> bool:
    """True when ``short`` names the same thing as ``long`` with words left out of the middle."""
    a, b = short.split(), long.split()
    if len(a) < 2 or len(a) >= len(b) or a[0] != b[0] or a[-1] != b[-1]:
        return False
    it = iter(b)
    return all(word in it for word in a)
