"""Metric functions on hand-made cases with known precision, recall and F1."""

from __future__ import annotations

import pytest

from kgrag.evaluation.metrics import (
    Counts,
    GoldEntity,
    alias_map,
    entity_counts,
    gold_entities,
    macro_f1,
    micro,
    normalized_key,
    prf,
    relation_counts,
    triple_counts,
)

A = ("John Wilkes Booth", "Kill", "President Lincoln")
B = ("Bethany", "Located_In", "Conn.")
C = ("Marie Magdefrau Ferraro", "Live_In", "Bethany")
D = ("Wang Ziqiang", "Work_For", "Institute of Mechanics")


def close(value: float, expected: float) -> bool:
    return value == pytest.approx(expected, abs=1e-9)


def test_perfect_and_partial_micro() -> None:
    assert micro([([A, B], [A, B])]).f1 == 1.0
    # one example: 1 of 2 predictions right, 1 of 3 gold found
    s = micro([([A, B, C], [A, D])])
    assert (s.tp, s.predicted, s.gold) == (1, 2, 3)
    assert close(s.precision, 1 / 2) and close(s.recall, 1 / 3) and close(s.f1, 0.4)


def test_micro_adds_counts_across_examples() -> None:
    s = micro([([A], [A]), ([B, C], [D]), ([D], [])])
    assert (s.tp, s.predicted, s.gold) == (1, 2, 4)
    assert close(s.precision, 0.5) and close(s.recall, 0.25) and close(s.f1, 1 / 3)


def test_duplicates_in_predictions_count_once() -> None:
    s = micro([([A, B], [A, A, A, ("John  Wilkes Booth ", "Kill", "President Lincoln")])])
    assert (s.tp, s.predicted, s.gold) == (1, 1, 2)
    assert close(s.precision, 1.0) and close(s.recall, 0.5) and close(s.f1, 2 / 3)


def test_duplicates_in_gold_count_once() -> None:
    s = micro([([A, A, B], [A])])
    assert (s.tp, s.predicted, s.gold) == (1, 1, 2)


def test_empty_prediction() -> None:
    s = micro([([A, B], [])])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    assert (s.tp, s.predicted, s.gold) == (0, 0, 2)


def test_empty_gold() -> None:
    s = micro([([], [A])])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    assert (s.tp, s.predicted, s.gold) == (0, 1, 0)


def test_empty_gold_and_prediction_is_perfect() -> None:
    s = micro([([], [])])
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    # an empty example does not change the score of the others
    assert close(micro([([A, B], [A]), ([], [])]).recall, 0.5)


def test_prf_from_counts() -> None:
    s = prf(Counts(tp=3, predicted=4, gold=6))
    assert close(s.precision, 0.75) and close(s.recall, 0.5) and close(s.f1, 0.6)
    assert Counts(1, 2, 3) + Counts(1, 1, 1) == Counts(2, 3, 4)


@pytest.mark.parametrize(
    ("predicted", "gold"),
    [
        (
            ("the Palace of Fine Arts", "located_in", "San Francisco"),
            ("Palace of Fine Arts", "Located_In", "San Francisco"),
        ),
        (("Aarhus Airport", "cityServed", "Aarhus, Denmark"), ("Aarhus Airport", "cityServed", '"Aarhus, Denmark"')),
        (("Kevin O'Brien", "Work_For", "NEW YORK TIMES"), ("Kevin O 'Brien", "Work_For", "New York Times")),
        (
            ("Adolfo Suarez Madrid-Barajas Airport", "location", "X"),
            ("Adolfo Suárez Madrid–Barajas Airport", "location", "X"),
        ),
        (("Alan_Bean", "birthPlace", "Wheeler,_Texas"), ("Alan Bean", "birthPlace", "Wheeler, Texas")),
        (("Conn.", "LOCATED_IN", "U.S."), ("Conn", "Located_In", "U S")),
    ],
)
def test_normalized_matches_what_strict_does_not(predicted: tuple[str, str, str], gold: tuple[str, str, str]) -> None:
    assert micro([([gold], [predicted])], "strict").f1 == 0.0
    assert micro([([gold], [predicted])], "normalized").f1 == 1.0


def test_strict_only_squashes_whitespace() -> None:
    assert micro([([A], [(" John Wilkes\tBooth", "Kill", "President  Lincoln ")])], "strict").f1 == 1.0
    assert micro([([A], [("john wilkes booth", "Kill", "President Lincoln")])], "strict").f1 == 0.0
    assert micro([([A], [("John Wilkes Booth", "kill", "President Lincoln")])], "strict").f1 == 0.0


def test_normalized_keeps_different_names_apart() -> None:
    assert micro([([A], [("Booth", "Kill", "Lincoln")])], "normalized").f1 == 0.0
    assert micro([([A], [("President Lincoln", "Kill", "John Wilkes Booth")])], "normalized").f1 == 0.0


def test_normalized_duplicates_collapse() -> None:
    s = micro([([A], [A, ("john wilkes booth", "KILL", "president lincoln.")])], "normalized")
    assert (s.tp, s.predicted, s.gold) == (1, 1, 1)


def test_unknown_mode() -> None:
    with pytest.raises(ValueError):
        micro([([A], [A])], "fuzzy")


def test_per_relation_and_macro_f1() -> None:
    by_rel = relation_counts([A, B, C], [A, B, D, ("X", "Kill", "Y")])
    assert by_rel["kill"] == Counts(tp=1, predicted=2, gold=1)
    assert by_rel["located_in"] == Counts(tp=1, predicted=1, gold=1)
    assert by_rel["live_in"] == Counts(tp=0, predicted=0, gold=1)
    assert by_rel["work_for"] == Counts(tp=0, predicted=1, gold=0)
    # F1: kill 2/3, located_in 1, live_in 0, work_for 0
    assert close(macro_f1(by_rel), (2 / 3 + 1) / 4)
    assert macro_f1({}) == 0.0
    assert sum((c for c in by_rel.values()), Counts()) == triple_counts([A, B, C], [A, B, D, ("X", "Kill", "Y")])


def test_alias_aware_normalized_match() -> None:
    entities = gold_entities([[['Wilfried " Willi " Schneider', "Schneider"], "PER"], [["Salt Lake City"], "LOC"]])
    aliases = alias_map(entities)
    assert aliases == {"schneider": "wilfried willi schneider"}
    gold = ('Wilfried " Willi " Schneider', "place of birth", "Salt Lake City")
    assert normalized_key(("Schneider", "place of birth", "Salt Lake City"), aliases) == normalized_key(gold, aliases)


def test_gold_entities_formats() -> None:
    conll = gold_entities([["John Wilkes Booth", "Peop"], ["June 30", "Other"]])
    assert conll == [GoldEntity(("John Wilkes Booth",), "Peop"), GoldEntity(("June 30",), "Other")]
    docred = gold_entities([[["Mediaș", "Medias"], "LOC"], "junk", []])
    assert docred == [GoldEntity(("Mediaș", "Medias"), "LOC")]


def test_entity_counts() -> None:
    gold = gold_entities([["John Wilkes Booth", "Peop"], ["President Lincoln", "Peop"], ["June 30", "Other"]])
    predicted = [("John Wilkes Booth", "Peop"), ("president lincoln", "Org"), ("the actor", "Peop")]
    assert entity_counts(gold, predicted) == Counts(tp=2, predicted=3, gold=3)
    assert entity_counts(gold, predicted, typed=True) == Counts(tp=1, predicted=3, gold=3)
    clusters = gold_entities([[["Wilfried Schneider", "Schneider"], "PER"]])
    assert entity_counts(clusters, [("Schneider", "PER"), ("Wilfried Schneider", "PER")]) == Counts(1, 1, 1)
