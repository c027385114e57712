"""Snapping generated names to the passage's spelling (kgrag.extract.spans) and its use in the
post-extraction filter shared by ``kgrag build`` and ``kgrag eval``."""

from __future__ import annotations

import pytest
from fakes import SCHEMAS

from kgrag.extract import filters
from kgrag.extract.filters import snap_triple, usable_triples
from kgrag.extract.spans import match_span, snap_to_text
from kgrag.records import ExtractedTriple
from kgrag.schema import GraphSchema

BOOTH = "John Wilkes Booth , who assassinated President Lincoln , was an actor ."
OBRIEN = "The opera company performed in San Francisco , said Kevin O 'Brien , a spokesman for the theater."
CAPITAL = "Four people were hanged in Washington , D.C. , in 1865 , the U.S. government said ."
DATELINE = "BANGKOK , Thailand ( AP ) _ Marie Skłodowska Curie and Winterset 's busiest street ."


@pytest.fixture(scope="module")
def conll() -> GraphSchema:
    return GraphSchema.load(SCHEMAS / "conll04.yaml")


def triple(head: str, relation: str, tail: str, prob: float = 1.0) -> ExtractedTriple:
    types = {"Kill": ("Peop", "Peop"), "Live_In": ("Peop", "Loc"), "Work_For": ("Peop", "Org")}[relation]
    return ExtractedTriple(head=head, head_type=types[0], relation=relation, tail=tail, tail_type=types[1], prob=prob)


@pytest.mark.parametrize(
    ("name", "text", "expected", "rule"),
    [
        # exact: unchanged (bar surrounding whitespace)
        ("John Wilkes Booth", BOOTH, "John Wilkes Booth", "exact"),
        ("Lincoln", BOOTH, "Lincoln", "exact"),  # never lengthened to "President Lincoln"
        ("  Booth ", BOOTH, "Booth", "exact"),
        # case
        ("john wilkes booth", BOOTH, "John Wilkes Booth", "case"),
        ("Bangkok", DATELINE, "BANGKOK", "case"),
        ("Actor", BOOTH, "actor", "case"),
        # punctuation, spacing and accents
        ("Washington, D.C.", CAPITAL, "Washington , D.C.", "punct"),
        ("U. S.", CAPITAL, "U.S.", "punct"),
        ("US", CAPITAL, "U.S.", "punct"),  # run together where the text has punctuation alone
        (
            "Adolfo Suarez Madrid–Barajas",
            "at Adolfo Suárez Madrid-Barajas airport",
            "Adolfo Suárez Madrid-Barajas",
            "punct",
        ),
        ("Marie Skłodowská Curie", DATELINE, "Marie Skłodowska Curie", "punct"),
        # tokenisation spaces of CoNLL04 / DocRED text
        ("Kevin O'Brien", OBRIEN, "Kevin O 'Brien", "punct"),
        ("Winterset's busiest street", DATELINE, "Winterset 's busiest street", "punct"),
        # a middle name more or less
        ("President Abraham Lincoln", BOOTH, "President Lincoln", "alias"),
        ("John Booth", BOOTH, "John Wilkes Booth", "alias"),
        ("Marie Curie", DATELINE, "Marie Skłodowska Curie", "alias"),
        # an article or person title the text does not have
        ("Mr. Lincoln", BOOTH, "Lincoln", "exact+stripped"),
        ("The Thailand", DATELINE, "Thailand", "exact+stripped"),
    ],
)
def test_snaps_to_the_span_of_the_text(name: str, text: str, expected: str, rule: str) -> None:
    match = match_span(name, text)
    assert match is not None and (match.text, match.rule) == (expected, rule)
    assert text[match.start : match.end] == expected
    assert snap_to_text(name, text) == expected


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Abraham Lincoln", BOOTH),  # "Abraham" is nowhere in the text
        ("Martin Luther King Jr.", "Martin Luther King III , a son of the slain leader , spoke ."),
        ("Paris", "Paris Hilton arrived ."),  # (this one is exact: a word of the text)
        ("Morgan City Rig", "the rig off Morgan City sank ."),  # never shortened at the ends
        ("Aumsville High School", "students from Aumsville went home ."),
        ("Lincoln", "He lives in Lincolnshire ."),  # never inside a word
        ("Gonna", "Never Gon na Give You Up"),  # a space of the text is a word boundary of the name
        ("May 26, 2014", "It opened in May 2014 ."),  # the left-out word is a number
        ("the Mughal war", "After the war he left ."),  # an article is no first word of an alias
        ("John Smith", "John said Smith left ."),  # an added word must be capitalised
        ("John Smith", "John , Paul Smith"),  # and not behind a comma
        ("Dr. Who", "He asked who came ."),  # a stripped title leaves a name, not "who"
        ("St. Louis", "Louis Armstrong played ."),  # "St." is no person title
        ("General Motors", "Motors were built here ."),
        ("Wang", ""),
        ("", BOOTH),
        ("--", BOOTH),
    ],
)
def test_leaves_names_without_a_confident_match_alone(name: str, text: str) -> None:
    match = match_span(name, text)
    assert match is None or match.text == name
    assert snap_to_text(name, text) == name


def test_paris_stays_paris() -> None:
    assert snap_to_text("Paris", "Paris Hilton arrived .") == "Paris"
    assert snap_to_text("paris", "Paris Hilton arrived .") == "Paris"  # case only, never the longer span


def test_prefers_the_spelling_closest_to_the_name_then_the_first() -> None:
    text = "Kevin O ' Brien met Kevin O 'Brien ."
    assert match_span("Kevin O 'brien", text) == match_span("Kevin O 'brien", text)  # deterministic
    assert snap_to_text("Kevin O'Brien", text) == "Kevin O 'Brien"
    assert match_span("Kevin O Brien", text) is not None
    assert snap_to_text("Washington", "WASHINGTON and Washington") == "Washington"
    assert snap_to_text("washington", "WASHINGTON and Washington") == "WASHINGTON"


def test_takes_the_shortest_alias_span() -> None:
    text = "John Paul Jones and John Jones met ."
    assert snap_to_text("John Jones", text) == "John Jones"  # exact first
    assert snap_to_text("John Q. Jones", text) == "John Jones"
    assert snap_to_text("John Smith", "John Paul Smith and John Paul George Smith") == "John Paul Smith"


def test_keeps_the_dot_of_an_abbreviation() -> None:
    text = "He moved to Bethany , Conn. , in 1990 ."
    assert snap_to_text("Conn.", text) == "Conn."
    assert snap_to_text("Conn", text) == "Conn"  # exact: left alone
    assert snap_to_text("CONN.", text) == "Conn."
    assert snap_to_text("Bethany", "Bethany. Then he left") == "Bethany"


def test_snap_triple_keeps_the_object_when_nothing_changes() -> None:
    t = triple("John Wilkes Booth", "Kill", "President Lincoln")
    assert snap_triple(t, BOOTH) is t
    snapped = snap_triple(triple("john wilkes booth", "Kill", "President Abraham Lincoln", 0.7), BOOTH)
    assert (snapped.head, snapped.tail, snapped.prob) == ("John Wilkes Booth", "President Lincoln", 0.7)


def test_usable_triples_snaps_then_filters(conll: GraphSchema) -> None:
    raw = [
        triple("john wilkes booth", "Kill", "President Abraham Lincoln", 0.6),  # rescued by snapping
        triple("John Wilkes Booth", "Kill", "president lincoln", 0.8),  # the same triple once snapped
        triple("Abraham Lincoln", "Kill", "John Wilkes Booth"),  # still not in the text
        ExtractedTriple(head="Lincoln", head_type="Loc", relation="Kill", tail="Booth", tail_type="Peop"),  # types
        triple("Booth", "Kill", "booth"),  # head and tail the same
    ]
    kept = usable_triples(raw, conll, BOOTH)
    assert [(t.head, t.relation, t.tail, t.prob) for t in kept] == [
        ("John Wilkes Booth", "Kill", "President Lincoln", 0.8)
    ]
    unsnapped = usable_triples(raw, conll, BOOTH, snap=False)  # the filter alone, as before
    assert [(t.head, t.tail) for t in unsnapped] == [("John Wilkes Booth", "president lincoln")]


def test_usable_triples_keeps_tokenised_names(conll: GraphSchema) -> None:
    kept = usable_triples([triple("Kevin O'Brien", "Live_In", "San Francisco")], conll, OBRIEN)
    assert [(t.head, t.tail) for t in kept] == [("Kevin O 'Brien", "San Francisco")]


def test_usable_triples_can_turn_round_a_triple_whose_types_fit_only_reversed(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = GraphSchema.load(SCHEMAS / "default.yaml")
    text = "Mess of Blues is an album by Jeff Healey , recorded in Toronto ."
    reversed_work = ExtractedTriple(
        head="Mess of Blues", head_type="Work", relation="author_of", tail="Jeff Healey", tail_type="Person", prob=0.7
    )
    wrong_both_ways = ExtractedTriple(
        head="Toronto", head_type="Location", relation="author_of", tail="Jeff Healey", tail_type="Person"
    )
    assert usable_triples([reversed_work], schema, text) == []  # dropped by default (FLIP_REVERSED)
    monkeypatch.setattr(filters, "FLIP_REVERSED", True)
    kept = usable_triples([reversed_work, wrong_both_ways], schema, text)
    assert [(t.head, t.head_type, t.relation, t.tail, t.tail_type, t.prob) for t in kept] == [
        ("Jeff Healey", "Person", "author_of", "Mess of Blues", "Work", 0.7)
    ]


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("Sacramento , California", ["Sacramento", "California"]),
        ("Guilderland, Albany County, New York", ["Guilderland", "Albany County", "New York"]),
        ("Washington , D.C.", ["Washington , D.C."]),  # the qualifier is part of the name
        ("Rocksburg , a fictional town", ["Rocksburg , a fictional town"]),
        ("St. Louis, Missouri", ["St. Louis", "Missouri"]),
        ("Paris", ["Paris"]),
    ],
)
def test_qualifiers_of_a_place_name(name: str, parts: list[str]) -> None:
    assert filters.qualifiers(name) == parts


def test_a_qualified_place_becomes_its_first_part_and_the_facts_its_qualifiers_state() -> None:
    schema = GraphSchema.load(SCHEMAS / "default.yaml")
    text = "Ross Alger was born in Prelate , Saskatchewan , Canada , and studied at the University of Alberta ."
    place = "Prelate , Saskatchewan , Canada"
    born = ExtractedTriple(head="Ross Alger", head_type="Person", relation="born_in", tail=place,
                           tail_type="Location", prob=0.8)  # fmt: skip
    kept = usable_triples([born], schema, text)
    assert [(t.head, t.relation, t.tail, t.prob) for t in kept] == [
        ("Ross Alger", "born_in", "Prelate", 0.8),
        ("Prelate", "located_in", "Saskatchewan", 0.8),
        ("Saskatchewan", "located_in", "Canada", 0.8),
    ]
    school = ExtractedTriple(head="Ross Alger", head_type="Person", relation="educated_at",
                             tail="University of Alberta", tail_type="Organization")  # fmt: skip
    assert usable_triples([school], schema, text) == [school]  # only Location names are qualified
