"""``kgrag eval --task verbalise``: BLEU and ROUGE-L of the graph verbaliser against WebNLG texts.

The hypothesis for a triple set is :func:`~kgrag.graph.verbalise.verbalise_triples`, the function
that writes entity-neighbourhood documents during a build. Dev lines that share the same triples
are the references of one set. WebNLG's literal quotes (``"\\"City Manager\\""``) are removed
before verbalising, since names in a built graph never carry them.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from pydantic import BaseModel, ValidationError

from kgrag import __version__
from kgrag.errors import KgragError
from kgrag.evaluation.harness import Example
from kgrag.graph.verbalise import verbalise_triples
from kgrag.io import read_lines, sha256_file

logger = logging.getLogger(__name__)

TripleSet = tuple[tuple[str, str, str], ...]


class RougeL(BaseModel):
    precision: float
    recall: float
    f1: float


class VerbaliseConfig(BaseModel):
    verbaliser: str
    dataset: str
    dataset_sha256: str
    limit: int | None  # triple sets scored
    bleu_signature: str
    rouge: str
    kgrag_version: str


class VerbaliseReport(BaseModel):
    """BLEU (sacrebleu corpus BLEU, 0-100) and ROUGE-L (rouge-score, best reference per set, 0-1)."""

    bleu: float
    rouge_l: RougeL
    sets: int
    references: int
    failed: int  # lines that could not be read
    sets_per_s: float
    config: VerbaliseConfig


def unquote(value: str) -> str:
    """WebNLG literal ``"\\"Aarhus, Denmark\\""`` → ``Aarhus, Denmark``."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].strip()
    return value


def group_references(lines: list[str]) -> tuple[list[tuple[TripleSet, list[str]]], int]:
    """Triple sets (in first-seen order and with their first line's triple order) with their
    reference texts, and the number of unreadable lines. Lines with the same triples, in any
    order, are references of one set."""
    groups: dict[TripleSet, tuple[TripleSet, list[str]]] = {}
    failed = 0
    for i, line in enumerate(lines):
        try:
            example = Example.model_validate_json(line)
        except ValidationError as exc:
            failed += 1
            logger.warning("line %d: unreadable: %s", i, exc.errors()[0]["msg"])
            continue
        if not example.triples or not example.text.strip():
            continue
        triples = tuple((h.strip(), r.strip(), t.strip()) for h, r, t in example.triples)
        groups.setdefault(tuple(sorted(triples)), (triples, []))[1].append(example.text.strip())
    return list(groups.values()), failed


def hypothesis(triples: TripleSet) -> str:
    return verbalise_triples([(unquote(h), r, unquote(t)) for h, r, t in triples])


def evaluate_verbaliser(data: Path, *, limit: int | None = None, predictions: Path | None = None) -> VerbaliseReport:
    """Score the verbaliser on the first ``limit`` triple sets of a WebNLG-style JSONL file."""
    import sacrebleu
    from rouge_score import rouge_scorer

    data = Path(data)
    groups, failed = group_references(read_lines(data, None))
    items = groups[:limit] if limit is not None else groups
    if not items:
        raise KgragError(f"{data}: no lines with both text and triples to score the verbaliser on")
    started = time.perf_counter()
    hyps = [hypothesis(triples) for triples, _ in items]
    width = max(len(refs) for _, refs in items)
    streams = [[refs[k] if k < len(refs) else None for _, refs in items] for k in range(width)]
    bleu = sacrebleu.metrics.BLEU()
    corpus = bleu.corpus_score(hyps, streams)  # type: ignore[arg-type]  # None = missing reference
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    p = r = f = 0.0
    for hyp, (_, refs) in zip(hyps, items):
        best = scorer.score_multi(refs, hyp)["rougeL"]
        p, r, f = p + best.precision, r + best.recall, f + best.fmeasure
    seconds = max(time.perf_counter() - started, 1e-9)
    if predictions is not None:
        predictions.parent.mkdir(parents=True, exist_ok=True)
        with predictions.open("w", encoding="utf-8") as out:
            for hyp, (triples, refs) in zip(hyps, items):
                record = {"triples": [list(t) for t in triples], "hypothesis": hyp, "references": refs}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    n = len(items)
    return VerbaliseReport(
        bleu=corpus.score,
        rouge_l=RougeL(precision=p / n, recall=r / n, f1=f / n),
        sets=n,
        references=sum(len(refs) for _, refs in items),
        failed=failed,
        sets_per_s=n / seconds,
        config=VerbaliseConfig(
            verbaliser="kgrag.graph.verbalise.verbalise_triples",
            dataset=str(data),
            dataset_sha256=sha256_file(data),
            limit=limit,
            bleu_signature=str(bleu.get_signature()),
            rouge="rouge-score rougeL, Porter stemmer, best reference per set, averaged over sets",
            kgrag_version=__version__,
        ),
    )
