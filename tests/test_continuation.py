"""The list-continuation logits processor: JSON state tracking and when it forbids closing the list."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import SCHEMAS

from kgrag.generator.continuation import JsonState, ListContinuation, structural_tokens

# a toy vocabulary: token id -> bytes, shaped like a BPE vocabulary's JSON pieces
VOCAB = {
    0: b'{"triples": [["',
    1: b'Ada", "Peop", "Live_In", "London", "Loc',
    2: b'"]',
    3: b"]}",
    4: b",",
    5: b'"]]}',
    6: b'"],',
    7: b" [",
    8: b"x",
    9: b"<prompt>",
}
PROMPT = [9, 9, 9]


def token_bytes(token: int) -> bytes:
    return VOCAB[token]


def scores_for(probs: dict[int, float]) -> np.ndarray:
    """Logits whose softmax puts ``probs`` on those tokens and spreads the rest thinly."""
    rest = (1.0 - sum(probs.values())) / (len(VOCAB) - len(probs))
    return np.log(np.array([probs.get(t, rest) for t in range(len(VOCAB))], dtype=np.float32))


def processor(min_continue: float, max_items: int | None = 6) -> ListContinuation:
    tokens = structural_tokens(len(VOCAB), token_bytes)
    return ListContinuation(tokens, token_bytes, min_continue, max_items)


def decide(cont: ListContinuation, generated: list[int], scores: np.ndarray) -> np.ndarray:
    """Run ``cont`` as llama.cpp does: once on the bare prompt, then once per generated token; the
    last call gets ``scores``."""
    filler = scores_for({8: 0.9})
    cont(np.array(PROMPT), filler if generated else scores)
    for i in range(1, len(generated) + 1):
        out = cont(np.array([*PROMPT, *generated[:i]]), scores if i == len(generated) else filler)
    return out if generated else scores


def test_json_state_counts_items_and_ignores_brackets_in_strings() -> None:
    state = JsonState()
    assert state.feed(b'{"triples": [["a]", "P", "r", "b,]"') is None
    assert state.feed(b', "L"]') == "end"
    assert (state.depth, state.items, state.in_string) == (2, 1, False)
    assert state.copy().feed(b",") == "continue"
    assert state.copy().feed(b"]}") == "close"
    escaped = JsonState()
    escaped.feed(b'{"triples": [["a\\"]]"')
    assert (escaped.depth, escaped.in_string) == (3, False)


def test_structural_tokens_are_punctuation_with_a_bracket_or_comma() -> None:
    assert set(structural_tokens(len(VOCAB), token_bytes)) == {2, 3, 4, 5, 6}


def test_forbids_closing_when_continuing_is_likely_enough() -> None:
    scores = scores_for({3: 0.6, 4: 0.35})
    out = decide(processor(0.3), [0, 1, 2], scores)
    assert out[3] == -np.inf and out[4] == scores[4]
    assert np.argmax(out) == 4


def test_greedy_threshold_leaves_a_likely_close_alone() -> None:
    scores = scores_for({3: 0.6, 4: 0.35})
    cont = processor(0.5)
    out = decide(cont, [0, 1, 2], scores)
    assert np.array_equal(out, scores) and cont.forced == 0


def test_decides_inside_the_closing_string_token() -> None:
    # right after the tail type: '"]]}' closes, '"],' continues, and '"]' ends the triple without a
    # comma, which trained models follow with ']}': it counts as closing
    scores = scores_for({5: 0.3, 6: 0.3, 2: 0.35})
    cont = processor(0.3)
    out = decide(cont, [0, 1], scores)
    assert out[5] == -np.inf and out[2] == -np.inf and out[6] == scores[6]
    assert cont.ratios() == [pytest.approx(0.3 / 0.95, abs=0.01)]


def test_never_acts_before_the_first_triple_or_at_max_items() -> None:
    scores = scores_for({3: 0.6, 4: 0.35})
    # inside the first triple: no complete item yet
    assert np.array_equal(decide(processor(0.1), [0], scores), scores)
    # one complete triple and max_items=1: the grammar must close, so nothing is forbidden
    assert np.array_equal(decide(processor(0.1, max_items=1), [0, 1, 2], scores), scores)


def test_no_decision_when_little_mass_is_on_closing_or_continuing() -> None:
    scores = scores_for({8: 0.95, 3: 0.02, 4: 0.02})
    assert np.array_equal(decide(processor(0.1), [0, 1, 2], scores), scores)


@pytest.mark.parametrize("threshold", [0.2, 0.5])
def test_state_follows_tokens_across_calls(threshold: float) -> None:
    cont = processor(threshold)
    first = scores_for({8: 0.9})
    cont(np.array([*PROMPT]), first)
    cont(np.array([*PROMPT, 0]), first)
    cont(np.array([*PROMPT, 0, 1]), first)
    assert cont.state.items == 0 and cont.state.in_string
    cont(np.array([*PROMPT, 0, 1, 2]), scores_for({3: 0.65, 4: 0.3}))
    assert cont.state.items == 1
    assert cont.forced == (1 if threshold <= 0.3 else 0)


@pytest.mark.model
def test_real_adapter_keeps_the_list_going_and_records_p_continue() -> None:
    """The shipped CoNLL04 adapter through llama.cpp: greedy first, then with a low threshold. The
    two agree up to the first decision, the low threshold writes at least as many triples, and every
    later triple carries the continue share that let it be written."""
    from kgrag.config import Settings
    from kgrag.extract.extractor import Extractor
    from kgrag.extract.factory import llama_cpp_options
    from kgrag.generator.llama_cpp import LazyLlamaCpp
    from kgrag.generator.ref import ModelRef, prompt_style
    from kgrag.records import Passage
    from kgrag.schema import GraphSchema

    text = "Maria Lopez , a spokeswoman for Acme Corp. in Boise , Idaho , said the plant in Nampa would close ."
    passage = Passage(id=0, doc_id="d", start=0, end=len(text), text=text)
    outputs = {}
    for threshold in (None, 0.05):
        settings = Settings(
            schema_path=SCHEMAS / "conll04.yaml", model="qwen2.5-0.5b-conll04", continue_threshold=threshold
        )
        schema = GraphSchema.load(settings.schema_path)
        extractor = Extractor(
            schema,
            LazyLlamaCpp(ModelRef.parse(settings.model), llama_cpp_options(settings)),
            None,
            6,
            400,
            prompt_style=prompt_style(settings.model),
        )
        outputs[threshold] = extractor.extract(passage).triples
    greedy, more = outputs[None], outputs[0.05]
    assert greedy and all(t.p_continue is None for t in greedy)
    assert len(more) >= len(greedy) >= 1
    assert (more[0].head, more[0].relation, more[0].tail) == (greedy[0].head, greedy[0].relation, greedy[0].tail)
    assert more[0].p_continue is None
    assert all(t.p_continue is not None and 0.05 <= t.p_continue <= 1 for t in more[1:])
