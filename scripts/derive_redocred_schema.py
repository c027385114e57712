"""Derive the bundled ``kgrag/schemas/redocred.yaml`` from the Re-DocRED dev split.

Relation inventory: DocRED's ``rel_info.json`` (96 Wikidata properties, copied below from
``guojiapub/PEMSCL`` ``meta/rel_info.json``, the file named in the data folder's README), names
spelled exactly as in the data. Every ``(relation_ids, triples)`` pair of the data file is checked
against it. One property, P1198 ``unemployment rate``, never occurs in dev; it keeps no domain/range.

Entity types: DocRED's six (PER, ORG, LOC, TIME, NUM, MISC). Domain and range of each relation are
the entity types of its gold heads and tails, read from ``entities``/``triple_entities``: a type is
kept when it is the head (tail) type of at least ``--min-share`` (2%) of the relation's triples or of
at least ``--min-count`` (10) of them, so the schema filter rejects very few correct triples. An
entity whose mentions disagree on the type (``ORG/LOC``, 9 clusters in dev) counts for each part,
and a gold triple passes when any part fits.

Only a dev split exists, so domain/range come from the data the schema is then evaluated on; the
relation names do not (they are the official list). Descriptions and the two few-shot examples are
hand-written (the examples are invented sentences, not from the data) and kept short: the system
prompt lists all 96 relations.

Usage: python scripts/derive_redocred_schema.py [--dev PATH] [--out PATH] [--min-share F] [--min-count N]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgrag.extract.prompts import answer_json, system_prompt
from kgrag.schema import GraphSchema

DEFAULT_DEV = Path("../shared/data/redocred/dev.jsonl")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "kgrag" / "schemas" / "redocred.yaml"
MAX_TRIPLES = 6  # kgrag's default max_triples, for the prompt-size estimate

# (name, description, expand)
ENTITY_TYPES: list[tuple[str, str, bool]] = [
    ("PER", "a person, real or fictional, or a family or dynasty (Bob Dylan, Henry VI)", True),
    (
        "ORG",
        "an organization: company, band, team, league, school, party, government body, army, "
        "religion or faith (Christian, Jewish)",
        True,
    ),
    (
        "LOC",
        "a place: country, region, city, river, lake, mountain, building; also a country written as "
        "a nationality (German, American)",
        True,
    ),
    ("TIME", "a date, year, period or duration (13 March 1963, 2002, the 1980s)", False),
    ("NUM", "a number, amount, percentage or measurement (three, 416,000, 5%)", False),
    (
        "MISC",
        "any other named thing: work (film, album, song, book, show), event, war, award, language, product, species",
        True,
    ),
]

# DocRED rel_info.json: Wikidata property id -> relation name, in the file's order.
REL_INFO: dict[str, str] = {
    "P6": "head of government",
    "P17": "country",
    "P19": "place of birth",
    "P20": "place of death",
    "P22": "father",
    "P25": "mother",
    "P26": "spouse",
    "P27": "country of citizenship",
    "P30": "continent",
    "P31": "instance of",
    "P35": "head of state",
    "P36": "capital",
    "P37": "official language",
    "P39": "position held",
    "P40": "child",
    "P50": "author",
    "P54": "member of sports team",
    "P57": "director",
    "P58": "screenwriter",
    "P69": "educated at",
    "P86": "composer",
    "P102": "member of political party",
    "P108": "employer",
    "P112": "founded by",
    "P118": "league",
    "P123": "publisher",
    "P127": "owned by",
    "P131": "located in the administrative territorial entity",
    "P136": "genre",
    "P137": "operator",
    "P140": "religion",
    "P150": "contains administrative territorial entity",
    "P155": "follows",
    "P156": "followed by",
    "P159": "headquarters location",
    "P161": "cast member",
    "P162": "producer",
    "P166": "award received",
    "P170": "creator",
    "P171": "parent taxon",
    "P172": "ethnic group",
    "P175": "performer",
    "P176": "manufacturer",
    "P178": "developer",
    "P179": "series",
    "P190": "sister city",
    "P194": "legislative body",
    "P205": "basin country",
    "P206": "located in or next to body of water",
    "P241": "military branch",
    "P264": "record label",
    "P272": "production company",
    "P276": "location",
    "P279": "subclass of",
    "P355": "subsidiary",
    "P361": "part of",
    "P364": "original language of work",
    "P400": "platform",
    "P403": "mouth of the watercourse",
    "P449": "original network",
    "P463": "member of",
    "P488": "chairperson",
    "P495": "country of origin",
    "P527": "has part",
    "P551": "residence",
    "P569": "date of birth",
    "P570": "date of death",
    "P571": "inception",
    "P576": "dissolved, abolished or demolished",
    "P577": "publication date",
    "P580": "start time",
    "P582": "end time",
    "P585": "point in time",
    "P607": "conflict",
    "P674": "characters",
    "P676": "lyrics by",
    "P706": "located on terrain feature",
    "P710": "participant",
    "P737": "influenced by",
    "P740": "location of formation",
    "P749": "parent organization",
    "P800": "notable work",
    "P807": "separated from",
    "P840": "narrative location",
    "P937": "work location",
    "P1001": "applies to jurisdiction",
    "P1056": "product or material produced",
    "P1198": "unemployment rate",
    "P1336": "territory claimed by",
    "P1344": "participant of",
    "P1365": "replaces",
    "P1366": "replaced by",
    "P1376": "capital of",
    "P1412": "languages spoken, written or signed",
    "P1441": "present in work",
    "P3373": "sibling",
}

# One short line per relation, always saying which side is which.
DESCRIPTIONS: dict[str, str] = {
    "head of government": "tail leads the government of head (mayor, premier)",
    "country": "head is in or belongs to country tail",
    "place of birth": "head was born in tail",
    "place of death": "head died in tail",
    "father": "tail is the father of head",
    "mother": "tail is the mother of head",
    "spouse": "head is or was married to tail",
    "country of citizenship": "head is a citizen of country tail",
    "continent": "head is on continent tail",
    "instance of": "head is a tail (its class)",
    "head of state": "tail is king or president of head",
    "capital": "tail is the capital of head",
    "official language": "tail is an official language of head",
    "position held": "head held office tail",
    "child": "tail is a child of head",
    "author": "tail wrote head",
    "member of sports team": "head plays or played for team tail",
    "director": "tail directed head",
    "screenwriter": "tail wrote the screenplay of head",
    "educated at": "head studied at tail",
    "composer": "tail composed the music of head",
    "member of political party": "head belongs to party tail",
    "employer": "head works or worked for tail",
    "founded by": "tail founded head",
    "league": "head plays in league tail",
    "publisher": "tail published head",
    "owned by": "tail owns head",
    "located in the administrative territorial entity": "head lies in region, state or city tail",
    "genre": "tail is the genre of head",
    "operator": "tail operates head",
    "religion": "head follows religion tail",
    "contains administrative territorial entity": "region tail lies in head",
    "follows": "head comes right after tail",
    "followed by": "tail comes right after head",
    "headquarters location": "head is headquartered in tail",
    "cast member": "tail acts in head",
    "producer": "tail produced head",
    "award received": "head won award tail",
    "creator": "tail created head",
    "parent taxon": "tail is the taxon just above head",
    "ethnic group": "head belongs to or has ethnic group tail",
    "performer": "tail performs head",
    "manufacturer": "tail makes head",
    "developer": "tail developed head",
    "series": "head is part of series tail",
    "sister city": "head and tail are twin towns",
    "legislative body": "tail is the parliament or council of head",
    "basin country": "lake or river head lies in country tail",
    "located in or next to body of water": "head lies on or by sea, lake or river tail",
    "military branch": "head serves or served in force tail",
    "record label": "head records for label tail",
    "production company": "tail produced film or show head",
    "location": "head happens or stands at place tail",
    "subclass of": "head is a kind of tail",
    "subsidiary": "tail is a subsidiary of head",
    "part of": "head is part of tail",
    "original language of work": "head was made in language tail",
    "platform": "head runs on tail",
    "mouth of the watercourse": "river head flows into tail",
    "original network": "head first aired on tail",
    "member of": "head is a member of tail",
    "chairperson": "tail chairs head",
    "country of origin": "head comes from country tail",
    "has part": "tail is part of head",
    "residence": "head lives or lived in tail",
    "date of birth": "head was born on tail",
    "date of death": "head died on tail",
    "inception": "head was founded or begun on tail",
    "dissolved, abolished or demolished": "head was dissolved or demolished on tail",
    "publication date": "head was published or released on tail",
    "start time": "head started on tail",
    "end time": "head ended on tail",
    "point in time": "head happened on tail",
    "conflict": "head fought in war or battle tail",
    "characters": "tail is a character in head",
    "lyrics by": "tail wrote the lyrics of head",
    "located on terrain feature": "head lies on island or landform tail",
    "participant": "tail took part in head",
    "influenced by": "head was influenced by tail",
    "location of formation": "head was formed in tail",
    "parent organization": "tail is the parent organization of head",
    "notable work": "tail is a notable work of head",
    "separated from": "head split off from tail",
    "narrative location": "head is set in tail",
    "work location": "head works or worked in tail",
    "applies to jurisdiction": "head is an office or body of place tail",
    "product or material produced": "head makes product tail",
    "unemployment rate": "tail is the unemployment rate of head",
    "territory claimed by": "tail claims territory head",
    "participant of": "head took part in tail",
    "replaces": "head replaced tail",
    "replaced by": "tail replaced head",
    "capital of": "head is the capital of tail",
    "languages spoken, written or signed": "head speaks or writes language tail",
    "present in work": "head appears in work tail",
    "sibling": "head and tail are siblings",
}

# Hand-written few-shot examples (invented, tokenised like DocRED: punctuation split off), at most
# MAX_TRIPLES triples each. The person, work, publisher, town, county and lake are made up.
EXAMPLES: list[dict[str, Any]] = [
    {
        "text": "Mara Lindqvist ( born 4 May 1971 in Uppsala ) is a Swedish novelist . "
        "Her first novel , The Salt Orchard , was published by Norrland Press in 1998 .",
        "triples": [
            ["Mara Lindqvist", "PER", "date of birth", "4 May 1971", "TIME"],
            ["Mara Lindqvist", "PER", "place of birth", "Uppsala", "LOC"],
            ["Mara Lindqvist", "PER", "country of citizenship", "Swedish", "LOC"],
            ["The Salt Orchard", "MISC", "author", "Mara Lindqvist", "PER"],
            ["The Salt Orchard", "MISC", "publisher", "Norrland Press", "ORG"],
            ["The Salt Orchard", "MISC", "publication date", "1998", "TIME"],
        ],
    },
    {
        "text": "Tolvmark is a small town in Esker County , Norway , on the northern shore of Lake Vesse .",
        "triples": [
            ["Tolvmark", "LOC", "located in the administrative territorial entity", "Esker County", "LOC"],
            ["Esker County", "LOC", "contains administrative territorial entity", "Tolvmark", "LOC"],
            ["Esker County", "LOC", "located in the administrative territorial entity", "Norway", "LOC"],
            ["Tolvmark", "LOC", "country", "Norway", "LOC"],
            ["Esker County", "LOC", "country", "Norway", "LOC"],
            ["Tolvmark", "LOC", "located in or next to body of water", "Lake Vesse", "LOC"],
        ],
    },
]
# Example names that must not occur in any dev text (the real places Uppsala and Norway may).
INVENTED = ("Mara Lindqvist", "The Salt Orchard", "Norrland Press", "Tolvmark", "Esker County", "Lake Vesse")


@dataclass
class GoldTriple:
    head_types: tuple[str, ...]  # "ORG/LOC" -> ("ORG", "LOC")
    relation: str
    tail_types: tuple[str, ...]


@dataclass
class Stats:
    triples: list[GoldTriple] = field(default_factory=list)
    count: Counter[str] = field(default_factory=Counter)
    heads: dict[str, Counter[str]] = field(default_factory=dict)
    tails: dict[str, Counter[str]] = field(default_factory=dict)


def read_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def collect(rows: list[dict[str, Any]]) -> Stats:
    """Per relation: its triple count and the entity types of its heads and tails."""
    names = set(REL_INFO.values())
    known = {name for name, _, _ in ENTITY_TYPES}
    stats = Stats()
    for row in rows:
        entities = row["entities"]
        for (_h, relation, _t), pid, (hi, ti) in zip(
            row["triples"], row["relation_ids"], row["triple_entities"], strict=True
        ):
            if REL_INFO.get(pid) != relation:
                raise SystemExit(f"{row['id']}: {pid} {relation!r} disagrees with rel_info ({REL_INFO.get(pid)!r})")
            head_types = tuple(entities[hi][1].split("/"))
            tail_types = tuple(entities[ti][1].split("/"))
            unknown = (set(head_types) | set(tail_types)) - known
            if unknown or relation not in names:
                raise SystemExit(f"{row['id']}: unknown entity type {unknown} or relation {relation!r}")
            stats.triples.append(GoldTriple(head_types, relation, tail_types))
            stats.count[relation] += 1
            stats.heads.setdefault(relation, Counter()).update(head_types)
            stats.tails.setdefault(relation, Counter()).update(tail_types)
    return stats


def kept_types(types: Counter[str], total: int, min_share: float, min_count: int) -> list[str]:
    """The types seen for at least ``min_share`` of ``total`` triples or ``min_count`` of them, in
    the schema's type order."""
    order = [name for name, _, _ in ENTITY_TYPES]
    keep = {t for t, n in types.items() if n >= min_share * total or n >= min_count}
    return [t for t in order if t in keep]


def signatures(stats: Stats, min_share: float, min_count: int) -> dict[str, tuple[list[str], list[str]]]:
    out = {}
    for relation, total in stats.count.items():
        domain = kept_types(stats.heads[relation], total, min_share, min_count)
        range_ = kept_types(stats.tails[relation], total, min_share, min_count)
        out[relation] = (domain, range_)
    return out


def passes(schema: GraphSchema, triple: GoldTriple) -> bool:
    """Whether the schema's domain/range admit the gold triple for some reading of its types."""
    return any(schema.violation(h, triple.relation, t) is None for h in triple.head_types for t in triple.tail_types)


def by_frequency(stats: Stats) -> list[str]:
    """All 96 relations, most frequent in dev first; ties (and unused ones) in name order."""
    return sorted(REL_INFO.values(), key=lambda name: (-stats.count[name], name))


def q(value: object) -> str:
    """A YAML flow scalar (JSON is valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def seen(types: Counter[str]) -> str:
    return " ".join(f"{t} {n}" for t, n in sorted(types.items(), key=lambda item: (-item[1], item[0])))


def render(
    stats: Stats,
    sigs: dict[str, tuple[list[str], list[str]]],
    args: argparse.Namespace,
    n_docs: int,
    rejected: int,
) -> str:
    total = len(stats.triples)
    share = f"{args.min_share:.0%}"
    unused = [name for name in REL_INFO.values() if not stats.count[name]]
    lines = [
        "# Re-DocRED (Tan et al. 2022) relation inventory, for benchmarking on its dev split.",
        "# Generated by scripts/derive_redocred_schema.py - do not edit by hand.",
        "# Relations: DocRED's official rel_info.json, the 96 Wikidata property labels, spelled exactly",
        "# as in the data; sorted by their number of dev triples (shown after each). Descriptions are",
        "# hand-written.",
        "# Domain/range: the entity types of the gold heads/tails (entities + triple_entities fields)",
        f"# in {args.dev.name} ({n_docs} documents, {total} triples). A type is kept when it is the",
        f"# head (tail) type of >= {share} of the relation's triples or of >= {args.min_count} of them; the",
        "# types seen, with counts, are in each line's comment. There is no train split, so they come",
        f"# from the dev data itself. The schema filter rejects {rejected} of the {total} gold dev",
        f"# triples ({rejected / total:.2%}). Unused in dev, hence no domain/range: {', '.join(unused) or 'none'}.",
        "# Examples: two invented sentences (not from the data).",
        "name: redocred",
        "description: "
        + q(
            "Wikipedia article openings annotated with DocRED's entity types and 96 Wikidata relations "
            "between entities anywhere in the passage; facts are often stated in both directions "
            "(part of / has part, follows / followed by) and nationalities stand for countries (German)."
        ),
        "",
        "entity_types:",
    ]
    for name, description, expand in ENTITY_TYPES:
        flag = "true" if expand else "false"
        lines.append(f"  - {{name: {q(name)}, description: {q(description)}, expand: {flag}}}")
    lines += ["", "relation_types:"]
    for name in by_frequency(stats):
        entry = f"name: {q(name)}, description: {q(DESCRIPTIONS[name])}"
        count = stats.count[name]
        if count:
            domain, range_ = sigs[name]
            entry += f", domain: {q(domain)}, range: {q(range_)}"
            note = f"{count}; head {seen(stats.heads[name])}; tail {seen(stats.tails[name])}"
        else:
            note = "0"
        lines.append(f"  - {{{entry}}}  # {note}")
    lines += ["", "examples:"]
    for example in EXAMPLES:
        lines.append(f"  - text: {q(example['text'])}")
        lines.append("    triples:")
        for triple in example["triples"]:
            lines.append(f"      - [{', '.join(q(part) for part in triple)}]")
    return "\n".join(lines) + "\n"


def check_examples(rows: list[dict[str, Any]]) -> None:
    texts = [row["text"] for row in rows]
    for name in INVENTED:
        if any(name in text for text in texts):
            raise SystemExit(f"example name {name!r} occurs in the dev data")
    for example in EXAMPLES:
        if len(example["triples"]) > MAX_TRIPLES:
            raise SystemExit(f"example {example['text'][:30]!r} has more than {MAX_TRIPLES} triples")
        for head, _, _, tail, _ in example["triples"]:
            if head not in example["text"] or tail not in example["text"]:
                raise SystemExit(f"example entity {head!r} or {tail!r} is not in its text")


def prompt_chars(schema: GraphSchema) -> tuple[int, int]:
    """Characters of the system prompt alone, and with the few-shot example turns."""
    system = len(system_prompt(schema, MAX_TRIPLES))
    turns = sum(len(f"Passage: {e['text']}") + len(answer_json(e["triples"])) for e in schema.examples)
    return system, system + turns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV, help=f"default: {DEFAULT_DEV}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    parser.add_argument("--min-share", type=float, default=0.02, help="keep a type seen for this share (0.02)")
    parser.add_argument("--min-count", type=int, default=10, help="or for this many triples (10)")
    args = parser.parse_args(argv)
    if set(DESCRIPTIONS) != set(REL_INFO.values()) or len(REL_INFO) != 96:
        raise SystemExit("DESCRIPTIONS must describe exactly the 96 rel_info relations")

    rows = read_rows(args.dev)
    stats = collect(rows)
    check_examples(rows)
    sigs = signatures(stats, args.min_share, args.min_count)

    # count rejections with the schema itself, after a draft render (the count goes in the header)
    draft = GraphSchema.model_validate(yaml.safe_load(render(stats, sigs, args, len(rows), 0)))
    rejected = sum(not passes(draft, t) for t in stats.triples)
    text = render(stats, sigs, args, len(rows), rejected)
    schema = GraphSchema.model_validate(yaml.safe_load(text))  # the hand-built YAML must round-trip
    if schema.relation_names != by_frequency(stats):
        raise SystemExit("generated YAML does not round-trip")
    for example in schema.examples:
        for _h, head_type, relation, _t, tail_type in example["triples"]:
            if problem := schema.violation(head_type, relation, tail_type):
                raise SystemExit(f"example triple breaks the schema: {problem}")
    schema.extraction_model(MAX_TRIPLES)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")

    # the same rule without the absolute floor, for comparison
    plain = signatures(stats, args.min_share, sys.maxsize)
    plain_rejected = sum(
        not any(h in plain[t.relation][0] for h in t.head_types)
        or not any(x in plain[t.relation][1] for x in t.tail_types)
        for t in stats.triples
    )
    total = len(stats.triples)
    system, with_examples = prompt_chars(schema)
    pairs = sum(len(d) + len(r) for d, r in sigs.values())
    print(f"wrote {args.out}", file=sys.stderr)
    print(
        f"{len(schema.relation_names)} relations ({len(stats.count)} used in {len(rows)} dev documents, "
        f"{total} triples); {len(schema.entity_type_names)} entity types",
        file=sys.stderr,
    )
    print(
        f"domain/range rule: >= {args.min_share:.0%} or >= {args.min_count} triples; "
        f"{pairs} domain+range entries; gold triples rejected: {rejected} ({rejected / total:.2%}); "
        f"with >= {args.min_share:.0%} alone: {plain_rejected} ({plain_rejected / total:.2%})",
        file=sys.stderr,
    )
    print(
        f"system prompt (max_triples={MAX_TRIPLES}): {system} chars, ~{system // 4} tokens; "
        f"with the {len(schema.examples)} examples: {with_examples} chars, ~{with_examples // 4} tokens",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
