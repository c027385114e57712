"""Whole builds scored against gold: what a user's graph looks like, not one sentence at a time.

Writes the first ``--n`` Re-DocRED dev documents (or a seeded sample of WebNLG dev triple sets,
one text each, across categories) as text files, builds over them with ``kgrag build``'s defaults
and their title entities as seeds, and scores the graph against the documents' gold triples:

- **pairs**: an edge is right when its head and tail are, in either order, the two entities of a
  gold triple of a document the edge's evidence comes from; names match through the gold mention
  clusters (normalized, any listed mention), the relation is ignored. Off-gold edges: edges with an
  end that is no gold entity of its documents.
- **strict**: the same, but ordered and with the gold relation name (meaningful with the dataset's
  own schema: ``--schema redocred`` / ``--schema webnlg``).

Also precision@k of edges ranked by confidence (k = 20, 50), under both criteria, and a reliability
table: bins of confidence vs the share of edges right (pairs). ``--max-entities`` defaults to the
number of seeds so that every title is expanded (the one flag a user with that many seeds sets).

    .venv/bin/python bench/corpus_bench.py --n 30                      # Re-DocRED, default schema
    .venv/bin/python bench/corpus_bench.py --n 30 --schema redocred    # strict triples
    .venv/bin/python bench/corpus_bench.py --dataset webnlg --n 30 --schema webnlg

Re-running with the same ``--out`` reuses the extraction cache (only scoring and what comes after
extraction run again: ``--flip-reversed`` measures turning triples round against dropping them);
``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from kgrag.config import Settings
from kgrag.extract import filters
from kgrag.graph.networkx_store import NetworkXStore, from_networkx
from kgrag.index.passage_store import PassageStore
from kgrag.pipeline import Pipeline
from kgrag.records import Entity, Triple
from kgrag.text import normalize

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
logger = logging.getLogger("bench.corpus")


@dataclass
class GoldDoc:
    """One document: its text, seed, entity clusters (names) and gold triples over cluster ids."""

    name: str
    text: str
    seed: str
    clusters: list[list[str]]
    triples: set[tuple[int, str, int]] = field(default_factory=set)

    def cluster_of(self, names: list[str]) -> int | None:
        wanted = {normalize(n) for n in names}
        for i, mentions in enumerate(self.clusters):
            if wanted & {normalize(m) for m in mentions}:
                return i
        return None

    @property
    def pairs(self) -> set[frozenset[int]]:
        return {frozenset((h, t)) for h, _, t in self.triples if h != t}


def redocred_docs(data: Path, n: int) -> list[GoldDoc]:
    docs = []
    for line in (data / "redocred" / "dev.jsonl").read_text(encoding="utf-8").splitlines()[:n]:
        row = json.loads(line)
        clusters = [list(names) for names, _type in row["entities"]]
        triples = {(h, rel, t) for (_, rel, _), (h, t) in zip(row["triples"], row["triple_entities"], strict=True)}
        seed = re.sub(r"\s*\(.*\)\s*$", "", row["title"]).strip()  # "Willi Schneider (skeleton racer)"
        docs.append(GoldDoc(row["id"], row["text"], seed, clusters, triples))
    return docs


def _webnlg_name(value: str) -> str:
    return value.replace("_", " ").strip().strip('"').strip()


def webnlg_docs(data: Path, n: int, seed: int) -> list[GoldDoc]:
    """One text of each of ``n`` triple sets drawn at random (the dev file is sorted by category)."""
    by_set: dict[str, dict] = {}
    for line in (data / "webnlg" / "dev.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_set.setdefault(row["id"].rsplit("-", 1)[0], row)  # webnlg-dev-<set>-<k>: the first text
    chosen = random.Random(seed).sample(sorted(by_set), n)
    docs = []
    for key in chosen:
        row = by_set[key]
        names: list[str] = []
        for h, _, t in row["triples"]:
            names += [_webnlg_name(h), _webnlg_name(t)]
        clusters = [[name] for name in dict.fromkeys(names)]
        index = {c[0]: i for i, c in enumerate(clusters)}
        triples = {(index[_webnlg_name(h)], r, index[_webnlg_name(t)]) for h, r, t in row["triples"]}
        seed_name = Counter(_webnlg_name(h) for h, _, _ in row["triples"]).most_common(1)[0][0]
        docs.append(GoldDoc(row["id"], row["text"], seed_name, clusters, triples))
    return docs


@dataclass
class Judged:
    triple: Triple
    pair: bool  # joins two entities of a gold triple of one of its documents
    strict: bool  # is a gold triple (ordered, relation name equal) of one of its documents
    off_gold: bool  # an end is no gold entity of any of its documents


def judge(triples: list[Triple], entities: dict[str, Entity], docs_of: dict[str, GoldDoc]) -> list[Judged]:
    out = []
    for t in triples:
        pair = strict = False
        off_gold = True
        heads, tails = entities[t.head], entities[t.tail]
        for doc_id in dict.fromkeys(ev.doc_id for ev in t.evidence if not ev.derived):
            doc = docs_of.get(doc_id)
            if doc is None:
                continue
            h = doc.cluster_of([heads.name, *heads.aliases])
            tl = doc.cluster_of([tails.name, *tails.aliases])
            if h is None or tl is None:
                continue
            off_gold = False
            pair |= frozenset((h, tl)) in doc.pairs
            strict |= (h, t.relation, tl) in doc.triples
        out.append(Judged(t, pair, strict, off_gold))
    return out


def prf(tp_pred: int, predicted: int, tp_gold: int, gold: int) -> tuple[float, float, float]:
    p = tp_pred / predicted if predicted else 0.0
    r = tp_gold / gold if gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def recall_counts(judged: list[Judged], entities: dict[str, Entity], docs: list[GoldDoc], docs_of: dict[str, GoldDoc]):
    """Gold pairs and gold triples found by some edge (per document)."""
    found_pairs: set[tuple[str, frozenset[int]]] = set()
    found_triples: set[tuple[str, tuple[int, str, int]]] = set()
    for j in judged:
        t = j.triple
        for doc_id in {ev.doc_id for ev in t.evidence if not ev.derived}:
            doc = docs_of.get(doc_id)
            if doc is None:
                continue
            h = doc.cluster_of([entities[t.head].name, *entities[t.head].aliases])
            tl = doc.cluster_of([entities[t.tail].name, *entities[t.tail].aliases])
            if h is None or tl is None:
                continue
            if frozenset((h, tl)) in doc.pairs:
                found_pairs.add((doc.name, frozenset((h, tl))))
            if (h, t.relation, tl) in doc.triples:
                found_triples.add((doc.name, (h, t.relation, tl)))
    gold_pairs = sum(len(d.pairs) for d in docs)
    gold_triples = sum(len(d.triples) for d in docs)
    return len(found_pairs), gold_pairs, len(found_triples), gold_triples


def precision_at(judged: list[Judged], k: int, attr: str) -> float:
    top = sorted(judged, key=lambda j: -j.triple.confidence)[:k]
    return sum(getattr(j, attr) for j in top) / len(top) if top else 0.0


def reliability(judged: list[Judged], edges: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.01)) -> Table:
    table = Table(title="confidence vs share right (pairs)")
    for col in ("confidence", "edges", "right", "share right"):
        table.add_column(col, justify="right")
    for lo, hi in pairwise(edges):
        group = [j for j in judged if lo <= j.triple.confidence < hi]
        right = sum(j.pair for j in group)
        share = f"{right / len(group):.2f}" if group else "-"
        table.add_row(f"[{lo:.1f}, {min(hi, 1.0):.1f}{')' if hi <= 1 else ']'}", str(len(group)), str(right), share)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["redocred", "webnlg"], default="redocred")
    parser.add_argument("--n", type=int, default=30, help="documents (Re-DocRED: the first N; WebNLG: N sampled sets)")
    parser.add_argument("--schema", default="default", help="schema name or file (default: default)")
    parser.add_argument("--model", default=None, help="generator model (default: the build default)")
    parser.add_argument("--max-entities", type=int, default=None, help="default: the number of seeds")
    parser.add_argument("--seed", type=int, default=13, help="WebNLG sample seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="another setting")
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=None, help="default /tmp/kgrag-corpus/<dataset>-<n>-<schema>")
    parser.add_argument("--fresh", action="store_true", help="delete --out first (no cached extractions)")
    parser.add_argument(
        "--flip-reversed", action="store_true", help="turn round triples whose types fit only reversed (default: drop)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    filters.FLIP_REVERSED = args.flip_reversed
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])

    if args.dataset == "redocred":
        docs = redocred_docs(args.data_dir, args.n)
    else:
        docs = webnlg_docs(args.data_dir, args.n, args.seed)
    out = args.out or Path("/tmp/kgrag-corpus") / f"{args.dataset}-{args.n}-{Path(args.schema).stem}"
    if args.fresh and out.exists():
        shutil.rmtree(out)
    doc_dir = out / "docs"
    doc_dir.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (doc_dir / f"{doc.name}.txt").write_text(doc.text + "\n", encoding="utf-8")
    seeds = list(dict.fromkeys(doc.seed for doc in docs))

    values: dict = {"schema_path": args.schema, "max_entities": args.max_entities or max(20, len(seeds))}
    if args.model:
        values["model"] = args.model
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            values[key] = json.loads(value)
        except json.JSONDecodeError:
            values[key] = value
    settings = Settings(**values)
    started = time.perf_counter()
    report = Pipeline(settings, out / "build", show_progress=True).run([doc_dir], seeds)
    seconds = time.perf_counter() - started

    graph = from_networkx(NetworkXStore(out / "build" / "graph.json").graph)
    entities = {e.key: e for e in graph.entities}
    store = PassageStore(out / "build" / "passages.sqlite")
    by_name = {doc.name: doc for doc in docs}
    docs_of: dict[str, GoldDoc] = {}
    for doc_id in {ev.doc_id for t in graph.triples for ev in t.evidence}:
        document = store.document(doc_id)
        if document is not None and Path(document.source).stem in by_name:
            docs_of[doc_id] = by_name[Path(document.source).stem]
    grounded = [t for t in graph.triples if not t.derived]
    judged = judge(grounded, entities, docs_of)
    pairs_found, gold_pairs, triples_found, gold_triples = recall_counts(judged, entities, docs, docs_of)
    pair = prf(sum(j.pair for j in judged), len(judged), pairs_found, gold_pairs)
    strict = prf(sum(j.strict for j in judged), len(judged), triples_found, gold_triples)
    figures = {
        "dataset": args.dataset,
        "documents": len(docs),
        "schema": args.schema,
        "model": settings.model,
        "edges": len(judged),
        "facts_per_document": len(judged) / len(docs),
        "seconds": seconds,
        "seconds_per_document": seconds / len(docs),
        "passages_read": report.passages_read,
        "model_calls": report.model_calls,
        "pairs": dict(zip(("precision", "recall", "f1"), pair, strict=True)),
        "strict": dict(zip(("precision", "recall", "f1"), strict, strict=True)),
        "off_gold_edges": sum(j.off_gold for j in judged),
        "precision_at": {f"{attr}@{k}": precision_at(judged, k, attr) for attr in ("pair", "strict") for k in (20, 50)},
        "relations": dict(Counter(j.triple.relation for j in judged).most_common()),
        "relations_right": dict(Counter(j.triple.relation for j in judged if j.pair).most_common()),
    }
    console = Console(width=160)
    table = Table(title=f"{args.dataset}: {len(docs)} documents, schema {args.schema}, model {settings.model}")
    for col in ("edges", "per doc", "s/doc", "pair P", "pair R", "pair F1", "strict P", "strict R", "strict F1",
                "off-gold", "pair P@20", "pair P@50", "strict P@20"):  # fmt: skip
        table.add_column(col, justify="right")
    at = figures["precision_at"]
    table.add_row(
        str(len(judged)), f"{len(judged) / len(docs):.1f}", f"{seconds / len(docs):.1f}",
        *(f"{x:.2f}" for x in (*pair, *strict)), str(figures["off_gold_edges"]),
        f"{at['pair@20']:.2f}", f"{at['pair@50']:.2f}", f"{at['strict@20']:.2f}",
    )  # fmt: skip
    console.print(table)
    console.print(reliability(judged))
    by_rel = defaultdict(lambda: [0, 0])
    for j in judged:
        by_rel[j.triple.relation][0] += 1
        by_rel[j.triple.relation][1] += j.pair
    console.print("edges by relation (right as pairs / all): " + ", ".join(
        f"{rel} {right}/{n}" for rel, (n, right) in sorted(by_rel.items(), key=lambda kv: -kv[1][0])
    ))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
