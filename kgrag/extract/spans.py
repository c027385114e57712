"""Snap a generated entity name to the passage's own spelling of it.

The generator often writes a name that is close to, but not exactly, a span of the passage: other
case ("Bangkok" for "BANGKOK"), other spacing or punctuation ("Kevin O'Brien" for the tokenised
"Kevin O 'Brien", "U. S." for "U.S."), an article or title the passage does not have, or a middle
name more or less ("President Abraham Lincoln" for "President Lincoln"). Benchmarks such as
CoNLL04 and evidence spans use the passage's text, so :func:`snap_to_text` replaces such a name by
the passage span it stands for, and leaves it unchanged when there is no confident match.

Words below are runs of word characters compared case- and accent-insensitively. The rules, first
match wins:

1. ``exact``: the name occurs in the text at word boundaries → unchanged (surrounding whitespace
   and runs of whitespace inside it aside);
2. ``case``: it occurs case-insensitively → that span;
3. ``punct``: a span has the name's words in the name's order, whatever separates them (so
   whitespace and punctuation do not matter, but a word boundary of the text that is only
   whitespace must be one of the name too: "Gonna" never becomes "Gon na"); the name may run
   together words that the text separates by punctuation alone ("US" for "U.S.") → that span,
   with a trailing ``.`` when the name has one or the span is an abbreviation (``U.S`` → ``U.S.``);
4. ``alias``: a span that starts with a capital letter, whose first and last words are the
   name's, and that is the name with at most :data:`MAX_GAP` words left out of its middle or added
   to it (the alias rule of entity resolution, :func:`kgrag.text.is_alias`, both ways),
   every word left out or added being capitalised (a name or an initial: "President Abraham
   Lincoln" → "President Lincoln", "Marie Curie" → "Marie Skłodowska Curie", never "May 26 , 2014"
   → "May 2014" or "the Mughal war" → "the war"), with nothing but spaces, dots, hyphens,
   apostrophes and ampersands between its words → the shortest such span;
5. rules 1-4 on the name without a leading article or person title ("The", "President" …), when
   the name as written matched nothing and the span found does not start in lower case ("Dr. Who"
   never becomes "who"); the rule is reported with ``+stripped``.

A match is never a span that adds or drops words at the name's ends (other than rule 5's one
leading word): "Paris" does not become "Paris Hilton", nor "Morgan City Rig" "Morgan City".
Everything here is pure and deterministic, and costs a few linear scans of the passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from itertools import pairwise

from kgrag.text import ARTICLES, fold

VERSION = "snap-v1"  # recorded in evaluation reports; change it when the rules change
MAX_GAP = 2  # most words an alias may leave out of the name's middle, or add to it
# person titles only: "General Motors" or "St. Louis" must keep their first word
TITLES = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sir", "president", "gov", "governor", "sen", "senator",
        "rep", "gen", "col", "capt", "lt", "sgt", "judge", "mayor", "ambassador", "king", "queen",
        "prince", "princess", "pope", "rev",
    }
)  # fmt: skip
_WORD = re.compile(r"\w+")
_ALIAS_GAP = re.compile(r"[\s.'\-’&]*")  # what may separate the words of one name in the text


@dataclass(frozen=True)
class SpanMatch:
    """Where a name matched in the text: the span ``text[start:end]`` and the rule that found it."""

    start: int
    end: int
    text: str
    rule: str  # exact, case, punct or alias; with "+stripped" when a leading word was dropped


@dataclass(frozen=True)
class Word:
    folded: str  # case-folded, accents dropped
    start: int
    end: int


def words(text: str) -> list[Word]:
    """The words of ``text`` (runs of word characters) with their character spans."""
    return [Word(fold(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


@dataclass(frozen=True)
class _Passage:
    """A passage prepared for matching: its words, and for each gap between two neighbouring
    words whether a name may run them together (punctuation alone separates them)."""

    text: str
    words: tuple[Word, ...]
    joinable: tuple[bool, ...]


@lru_cache(maxsize=64)
def _passage(text: str) -> _Passage:
    ws = tuple(words(text))
    joinable = tuple(not any(c.isspace() for c in text[a.end : b.start]) for a, b in pairwise(ws))
    return _Passage(text, ws, joinable)


def _find(name: str, text: str, flags: int = 0) -> tuple[int, int] | None:
    """The first occurrence of ``name`` that neither starts nor ends inside a word of the text,
    any run of whitespace matching any other."""
    pattern = r"\s+".join(re.escape(part) for part in name.split())
    if _WORD.match(name[0]):
        pattern = r"(?<!\w)" + pattern
    if _WORD.match(name[-1]):
        pattern += r"(?!\w)"
    m = re.search(pattern, text, flags)
    return (m.start(), m.end()) if m else None


def _with_dot(name: str, text: str, start: int, end: int) -> tuple[int, int]:
    """Take in a ``.`` right after the span when the name ends with one or the span is an
    abbreviation that the dot finishes (``U.S`` → ``U.S.``)."""
    if end < len(text) and text[end] == "." and (name.endswith(".") or "." in text[start:end]):
        return start, end + 1
    return start, end


def _similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, a.casefold(), b.casefold(), autojunk=False).ratio()


def _words_at(target: Sequence[str], passage: _Passage, i: int) -> int | None:
    """The index after the last passage word when the words from ``i`` on spell ``target``
    (a target word may be several passage words that only punctuation separates); else None."""
    ws, p = passage.words, i
    for word in target:
        if p >= len(ws):
            return None
        spelled = ws[p].folded
        while spelled != word:
            if not word.startswith(spelled) or p + 1 >= len(ws) or not passage.joinable[p]:
                return None
            p += 1
            spelled += ws[p].folded
        p += 1
    return p


def _punct_match(name: str, passage: _Passage) -> tuple[int, int] | None:
    """The span spelling the name's words (rule 3); the one written most like the name, then the
    first."""
    target = [w.folded for w in words(name)]
    ws = passage.words
    found: list[tuple[int, int]] = []
    for i, word in enumerate(ws):
        if target[0].startswith(word.folded) and (end := _words_at(target, passage, i)) is not None:
            found.append((word.start, ws[end - 1].end))
    if not found:
        return None
    text = passage.text
    best = max(found, key=lambda s: (_similarity(name, text[s[0] : s[1]]), -s[0]))
    return _with_dot(name, text, *best)


def _others_capitalised(short: Sequence[str], long: Sequence[Word], source: str) -> bool:
    """True when ``short`` is the words of ``long`` (spelled in ``source``) with some left out, in
    order, and every word left out starts with a capital letter (a name or an initial, not a
    number or a common word)."""
    s = 0
    for word in long:
        if s < len(short) and word.folded == short[s]:
            s += 1
        elif not source[word.start].isupper():
            return False
    return s == len(short)


def _alias_match(name: str, passage: _Passage) -> tuple[int, int] | None:
    """The shortest span that is the name with middle words left out or added (rule 4)."""
    name_words = words(name)
    target = [w.folded for w in name_words]
    if len(target) < 2 or target[0] == target[-1] or target[0] in ARTICLES:
        return None
    text, ws = passage.text, passage.words
    best: tuple[int, int] | None = None
    for i, first in enumerate(ws):
        if first.folded != target[0] or not text[first.start].isupper():
            continue
        for j in range(i + 1, min(len(ws), i + len(target) + MAX_GAP)):
            if not _ALIAS_GAP.fullmatch(text[ws[j - 1].end : ws[j].start]):
                break
            if ws[j].folded != target[-1]:
                continue
            span = ws[i : j + 1]
            if len(span) < len(target):
                left_out = len(target) - len(span)
                ok = left_out <= MAX_GAP and _others_capitalised([w.folded for w in span], name_words, name)
            else:
                ok = len(span) > len(target) and _others_capitalised(target, span, text)
            if ok and (best is None or ws[j].end - first.start < best[1] - best[0]):
                best = (first.start, ws[j].end)
            break  # the nearest last word decides for this first word
    return _with_dot(name, text, *best) if best is not None else None


def _match(name: str, passage: _Passage) -> SpanMatch | None:
    text = passage.text
    for rule, find in (
        ("exact", lambda: _find(name, text)),
        ("case", lambda: _find(name, text, re.IGNORECASE)),
        ("punct", lambda: _punct_match(name, passage)),
        ("alias", lambda: _alias_match(name, passage)),
    ):
        span = find()
        if span is not None:
            return SpanMatch(span[0], span[1], text[span[0] : span[1]], rule)
    return None


def match_span(name: str, text: str) -> SpanMatch | None:
    """The span of ``text`` that ``name`` stands for, by the rules of this module; None when
    there is no confident match."""
    name = " ".join(name.split())
    if not words(name):
        return None
    passage = _passage(text)
    match = _match(name, passage)
    if match is not None:
        return match
    first, _, rest = name.partition(" ")
    if rest and fold(first).strip(".") in ARTICLES | TITLES and words(rest):
        shorter = _match(rest, passage)
        if shorter is not None and not shorter.text[:1].islower():  # a name, not "who" for "Dr. Who"
            return SpanMatch(shorter.start, shorter.end, shorter.text, shorter.rule + "+stripped")
    return None


def snap_to_text(name: str, text: str) -> str:
    """``name`` as the passage ``text`` spells it (see the module's rules), or ``name`` unchanged
    when no span of the text matches it confidently."""
    match = match_span(name, text)
    return match.text if match is not None else name
