"""Name snapping (:mod:`kgrag.extract.spans`) measured on saved ``kgrag eval --predictions`` files.

No model runs: each file's generated triples (the kept ``predicted`` ones and the ``dropped`` ones)
go through :func:`~kgrag.extract.filters.usable_triples` without and with snapping, and the table
gives the strict and normalized micro P/R/F1 of both, the names snapped by each rule, and the
triples that snapping saves from the grounding filter. A second table snaps every gold head and
tail of the dev sets against its own text: CoNLL04 gold names are text spans, so any change there is
a false snap (Re-DocRED's are partly detokenised, "July 3, 1954" for "July 3 , 1954", and WebNLG's
are DBpedia labels, so changes there show where snapping moves a name away from gold). A third
table snaps gold names of other examples that do not occur in a text against it: each snap there
rescues an ungrounded name, to be checked by eye.

    .venv/bin/python bench/snap_bench.py /tmp/demos_eval/p05.jsonl /tmp/demos_eval/p15.jsonl
    .venv/bin/python bench/snap_bench.py FILE… --changes      # also list every snapped name

Predictions hold kept triples without types; they are given the first type of their relation's
domain and range, which passes the schema filter they already passed.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kgrag.evaluation.metrics import PRF, Triple, key_function, micro, triple_counts
from kgrag.extract.filters import usable_triples
from kgrag.extract.spans import match_span
from kgrag.records import ExtractedTriple
from kgrag.schema import GraphSchema, bundled_schemas
from kgrag.text import normalize

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SCHEMAS = {name: bundled_schemas()[name] for name in ("conll04", "webnlg")}
GOLD_SETS = ("conll04/dev.jsonl", "redocred/dev.jsonl", "webnlg/dev.jsonl")


def schema_of(example_id: str) -> Path:
    prefix = example_id.split("-", 1)[0]
    if prefix not in SCHEMAS:
        raise SystemExit(f"no schema known for examples {example_id!r} (known: {', '.join(SCHEMAS)})")
    return SCHEMAS[prefix]


def typed(triple: list[str], schema: GraphSchema) -> ExtractedTriple:
    """A kept ``[h, r, t]`` prediction with the first types its relation allows."""
    head, relation, tail = triple
    rel = schema.relation(relation)
    default = schema.entity_type_names[0]
    head_type = rel.domain[0] if rel is not None and rel.domain else default
    tail_type = rel.range[0] if rel is not None and rel.range else default
    return ExtractedTriple(head=head, head_type=head_type, relation=relation, tail=tail, tail_type=tail_type)


def plain(triples: Iterable[ExtractedTriple]) -> list[Triple]:
    return [(t.head, t.relation, t.tail) for t in triples]


@dataclass
class FileResult:
    name: str
    examples: int = 0
    pairs_before: list[tuple[list[Triple], list[Triple]]] = field(default_factory=list)
    pairs_after: list[tuple[list[Triple], list[Triple]]] = field(default_factory=list)
    rules: Counter[str] = field(default_factory=Counter)
    rescued: int = 0  # triples the grounding filter kept only after snapping
    mismatches: int = 0  # examples where the unsnapped filter does not reproduce the saved predictions
    changes: list[str] = field(default_factory=list)

    def scores(self, mode: str) -> tuple[PRF, PRF]:
        return micro(self.pairs_before, mode), micro(self.pairs_after, mode)

    def hits_moved(self) -> tuple[int, int]:
        """True positives (strict and normalized together) that snapping adds and that it loses,
        example by example."""
        gained = lost = 0
        for mode in ("strict", "normalized"):
            key = key_function(mode)
            for (gold, before), (_, after) in zip(self.pairs_before, self.pairs_after):
                delta = triple_counts(gold, after, key).tp - triple_counts(gold, before, key).tp
                gained, lost = gained + max(delta, 0), lost + max(-delta, 0)
        return gained, lost


def run_file(path: Path, schemas: dict[Path, GraphSchema]) -> FileResult:
    result = FileResult(path.name)
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "text" not in row:
            continue  # an unreadable example of the original run
        schema_path = schema_of(row["id"])
        schema = schemas.setdefault(schema_path, GraphSchema.load(schema_path))
        text = row["text"]
        raw = [typed(t, schema) for t in row["predicted"]]
        raw += [
            ExtractedTriple(head=h, head_type=ht, relation=r, tail=t, tail_type=tt)
            for h, ht, r, t, tt in row["dropped"]
        ]
        before = usable_triples(raw, schema, text, snap=False)
        after = usable_triples(raw, schema, text, snap=True)
        gold: list[Triple] = [tuple(t) for t in row["gold"]]  # type: ignore[misc]
        result.examples += 1
        result.mismatches += int({tuple(t) for t in row["predicted"]} != set(plain(before)))
        result.pairs_before.append((gold, plain(before)))
        result.pairs_after.append((gold, plain(after)))
        result.rescued += sum(
            1 for t in raw if usable_triples([t], schema, text) and not usable_triples([t], schema, text, snap=False)
        )
        for name in dict.fromkeys(n for t in raw for n in (t.head, t.tail)):
            match = match_span(name, text)
            rule = match.rule if match is not None else "none"
            result.rules[rule] += 1
            if match is not None and match.text != name:
                result.changes.append(f"{row['id']}: {name!r} -> {match.text!r} ({rule})")
    return result


def gold_changes(path: Path) -> tuple[int, Counter[str], list[str]]:
    """Gold heads and tails snapped against their own text: how many, by rule, and the changed ones."""
    names = 0
    rules: Counter[str] = Counter()
    changed: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for name in dict.fromkeys(n for h, _, t in row.get("triples", []) for n in (h, t)):
            names += 1
            match = match_span(name, row["text"])
            rules[match.rule if match is not None else "none"] += 1
            if match is not None and match.text != name:
                changed.append(f"{row['id']}: {name!r} -> {match.text!r} ({match.rule})")
    return names, rules, changed


def foreign_snaps(path: Path, examples: int = 300, per_example: int = 200) -> tuple[int, Counter[str], list[str]]:
    """Gold names of other examples that do not occur in a text (after the grounding filter's
    normalization), snapped against it: each snap there turns an ungrounded name into a grounded
    one, so each is a rescue to check by eye (a fixed random sample of names per text)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    names = sorted({n for row in rows for h, _, t in row.get("triples", []) for n in (h, t)})
    rng = random.Random(0)
    tried = 0
    rules: Counter[str] = Counter()
    snapped: list[str] = []
    for row in rows[:examples]:
        padded = f" {normalize(row['text'])} "
        for name in rng.sample(names, min(per_example, len(names))):
            if f" {normalize(name)} " in padded:
                continue
            tried += 1
            match = match_span(name, row["text"])
            if match is not None:
                rules[match.rule] += 1
                snapped.append(f"{row['id']}: {name!r} -> {match.text!r} ({match.rule})")
    return tried, rules, snapped


def fmt(score: PRF) -> str:
    return f"{score.precision:.3f} {score.recall:.3f} {score.f1:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", nargs="+", type=Path, help="kgrag eval --predictions JSONL files")
    parser.add_argument("--changes", action="store_true", help="list every snapped name")
    parser.add_argument("--no-gold", action="store_true", help="skip the gold-name table")
    args = parser.parse_args()
    console = Console(width=190)
    schemas: dict[Path, GraphSchema] = {}

    table = Table(title="micro P R F1 of saved predictions, without → with snapping")
    for column in ("file", "n", "strict before", "strict after", "norm. before", "norm. after", "ΔF1 s/n"):
        table.add_column(column, justify="left" if column == "file" else "right")
    table.add_column("snapped names by rule")
    table.add_column("rescued", justify="right")
    table.add_column("hits +/−", justify="right")
    results = [run_file(path, schemas) for path in args.predictions]
    for r in results:
        (sb, sa), (nb, na) = r.scores("strict"), r.scores("normalized")
        rules = ", ".join(f"{k} {v}" for k, v in sorted(r.rules.items()) if k not in ("exact", "none"))
        table.add_row(
            r.name + (f" ({r.mismatches} mismatched)" if r.mismatches else ""),
            str(r.examples),
            fmt(sb),
            fmt(sa),
            fmt(nb),
            fmt(na),
            f"{sa.f1 - sb.f1:+.3f} / {na.f1 - nb.f1:+.3f}",
            rules or "-",
            str(r.rescued),
            "+{} / −{}".format(*r.hits_moved()),
        )
    console.print(table)
    if args.changes:
        for r in results:
            for change in r.changes:
                console.print(f"  {r.name} {change}", markup=False, highlight=False)

    if args.no_gold:
        return
    gold = Table(title="gold names snapped against their own text (CoNLL04: a change is a false snap)")
    for column in ("dev set", "names", "rules", "changed"):
        gold.add_column(column)
    listed: list[str] = []
    for rel in GOLD_SETS:
        path = DATA / rel
        if not path.exists():
            continue
        names, rules, changed = gold_changes(path)
        gold.add_row(rel, str(names), ", ".join(f"{k} {v}" for k, v in sorted(rules.items())), str(len(changed)))
        listed += [f"  {rel} {c}" for c in changed[:15]]
    console.print(gold)
    if args.changes:
        for line in listed:
            console.print(line, markup=False, highlight=False)

    foreign = Table(title="gold names of other examples, absent from the text, snapped against it (suspect rescues)")
    for column in ("dev set", "names tried", "snapped, by rule"):
        foreign.add_column(column)
    listed = []
    for rel in GOLD_SETS[:2]:
        path = DATA / rel
        if not path.exists():
            continue
        tried, rules, snapped = foreign_snaps(path)
        foreign.add_row(rel, str(tried), ", ".join(f"{k} {v}" for k, v in sorted(rules.items())) or "-")
        listed += [f"  {rel} {c}" for c in snapped]
    console.print(foreign)
    if args.changes:
        for line in listed:
            console.print(line, markup=False, highlight=False)


if __name__ == "__main__":
    main()
