"""Keep a triple list going when the model thinks another triple is likely enough.

Greedy decoding ends the list as soon as closing it is the single likeliest token, so a model that
gives a second triple a 40 % chance never writes it: a fine-tuned extractor emitted one triple for
88 % of CoNLL04 dev sentences, where 23 % have two or more. :class:`ListContinuation` is a llama.cpp
logits processor that, after each complete triple, compares the model's own probability of
continuing the list (a ``,``) with that of closing it (``]``), and forbids the closing tokens when
P(continue) / (P(continue) + P(close)) reaches ``min_continue``. Greedy decoding is the special case
``min_continue = 0.5``; lower values trade precision for recall. It is off by default: on the
shipped CoNLL04 adapter the extra triples were right about one time in five, so F1 fell (README,
"Fine-tuning"); it is for builds that prefer recall and let confidence sort the graph's facts.

The processor follows the generated JSON byte by byte (depth and string state), so it needs no
grammar internals; it only ever acts between triples, after the first and before ``max_items``
(the schema's ``maxItems``), where the grammar allows both a comma and the closing bracket. A token
may close the last triple and the list at once (``"]]}``), so each candidate token is simulated.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kgrag.generator.sampling import GeneratedTokens

_STRUCTURE = frozenset(b'"]},[ \t\r\n')
_LIST_DEPTH = 2  # {"triples": [ ... ]}: the object is depth 1, the triple list depth 2, a triple depth 3
_DECISION_MASS = 0.2  # closing + continuing tokens must hold this much probability to count as the decision


class JsonState:
    """Where a JSON text stands after some bytes: nesting depth, inside a string or not, and how
    many elements of the triple list are complete."""

    __slots__ = ("depth", "escape", "in_string", "items")

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escape = False
        self.items = 0

    def copy(self) -> JsonState:
        state = JsonState()
        state.depth, state.in_string, state.escape, state.items = self.depth, self.in_string, self.escape, self.items
        return state

    def feed(self, data: bytes) -> str | None:
        """Advance over ``data``; returns "close" when it closes the triple list, "continue" when it
        writes the comma after a list element, "end" when it completes an element and stops right
        after it, None otherwise (the first of "close" and "continue" wins)."""
        items = self.items
        for byte in data:
            if self.in_string:
                if self.escape:
                    self.escape = False
                elif byte == 0x5C:  # backslash
                    self.escape = True
                elif byte == 0x22:  # quote
                    self.in_string = False
                continue
            if byte == 0x22:
                self.in_string = True
            elif byte in b"[{":
                self.depth += 1
            elif byte in b"]}":
                self.depth -= 1
                if self.depth == _LIST_DEPTH:
                    self.items += 1
                elif self.depth == _LIST_DEPTH - 1:
                    return "close"
            elif byte == 0x2C and self.depth == _LIST_DEPTH:  # comma
                return "continue"
        return "end" if self.items > items and self.depth == _LIST_DEPTH and not self.in_string else None


def structural_tokens(n_vocab: int, token_bytes: Callable[[int], bytes]) -> dict[int, bytes]:
    """The tokens made only of JSON punctuation and whitespace that hold a ``]`` or a ``,``: the
    only ones that can close or continue the list right after a triple (``"]``, ``"],``, ``]}``…)."""
    found = {}
    for token in range(n_vocab):
        data = token_bytes(token)
        if data and set(data) <= _STRUCTURE and (b"]" in data or b"," in data):
            found[token] = data
    return found


class ListContinuation:
    """A logits processor for one generation (see the module doc). ``tokens`` is
    :func:`structural_tokens` of the model's vocabulary."""

    def __init__(
        self,
        tokens: dict[int, bytes],
        token_bytes: Callable[[int], bytes],
        min_continue: float,
        max_items: int | None,
    ) -> None:
        self.tokens = tokens
        self.token_bytes = token_bytes
        self.min_continue = min_continue
        self.max_items = max_items
        self.state = JsonState()
        self.generated = GeneratedTokens()  # the generated tokens already fed to the state
        self.forced = 0  # decisions where closing the list was forbidden
        self._ratios: dict[int, float] = {}  # triples before the gap -> highest P(continue) share seen there

    def ratios(self) -> list[float]:
        """P(continue) / (P(continue) + P(close)) at each decision between triples: element i is the
        one after triple i + 1 (the highest over the tokens of that decision; 0 where none was seen)."""
        if not self._ratios:
            return []
        return [self._ratios.get(gap, 0.0) for gap in range(1, max(self._ratios) + 1)]

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        for token in self.generated.new(input_ids):
            self.state.feed(self.token_bytes(int(token)))
        state = self.state
        if not (state.depth == _LIST_DEPTH or (state.depth == _LIST_DEPTH + 1 and state.in_string)):
            return scores
        close, cont = [], []
        for token, data in self.tokens.items():
            after = state.copy()
            outcome = after.feed(data)
            # closing an empty list is no early stop, and at max_items the grammar must close. A
            # token that ends a triple without a comma ('"]') counts as closing: trained models
            # write '"]' + ']}' for a last triple and '"],' for one that has a successor
            if (
                outcome in ("close", "end")
                and after.items >= 1
                and (self.max_items is None or after.items < self.max_items)
            ):
                close.append(token)
            elif outcome == "continue":
                cont.append(token)
        if not close or not cont:
            return scores
        row = scores.astype(np.float64)
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        p_close, p_cont = float(probs[close].sum()), float(probs[cont].sum())
        if p_close + p_cont < _DECISION_MASS:
            return scores
        ratio = p_cont / (p_close + p_cont)
        gap = state.items + (0 if state.depth == _LIST_DEPTH else 1)
        self._ratios[gap] = max(ratio, self._ratios.get(gap, 0.0))
        if ratio < self.min_continue:
            return scores
        self.forced += 1
        scores = scores.copy()
        scores[close] = -np.inf
        return scores
