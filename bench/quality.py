"""Extraction quality on the dev sets (a benchmark, not a timed test).

Runs the ``kgrag eval`` harness on the first ``--limit`` examples of each dev set (a seeded random
sample of that size for WebNLG, whose dev file is sorted by category) with each model
and prints one table: dataset, model, P/R/F1 strict and normalized, examples/s. With ``--out`` each
run's JSON report and predictions are kept there for comparison and error analysis. With ``--demos``
each input gets the ``--n-demos`` most similar examples of the dataset's training split as few-shot
demonstrations (``kgrag eval --demos``); a dataset without a training split runs without them.

    .venv/bin/python bench/quality.py --limit 50
    .venv/bin/python bench/quality.py --limit 50 --models qwen2.5-0.5b qwen2.5-1.5b --datasets conll04
    .venv/bin/python bench/quality.py --limit 50 --datasets webnlg --demos
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from kgrag.config import Settings
from kgrag.evaluation.harness import EvalReport, evaluate_extraction
from kgrag.schema import bundled_schemas

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# dataset -> (dev file under the data folder, bundled schema names in order of preference)
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "conll04": ("conll04/dev.jsonl", ("conll04",)),
    "webnlg": ("webnlg/dev.jsonl", ("webnlg",)),
    "redocred": ("redocred/dev.jsonl", ("redocred", "default")),
}
TRAIN = {"conll04": "conll04/train.jsonl", "webnlg": "webnlg/train.jsonl"}  # demonstration pools (--demos)
DOCUMENT_LEVEL = {"redocred"}  # evaluated like build reads documents: cut into passages (eval --chunked)
SAMPLED = {"webnlg"}  # sorted by category (the first 50 dev texts are all Airport): a seeded random sample

logger = logging.getLogger("bench.quality")


def schema_for(dataset: str) -> Path:
    """The first bundled schema named for ``dataset``, as its name (the report then records the name)."""
    bundled = bundled_schemas()
    for name in DATASETS[dataset][1]:
        if name in bundled:
            return Path(name)
    raise SystemExit(f"no schema for {dataset} among the bundled ones ({', '.join(bundled)})")


def demo_pool(dataset: str, data_dir: Path) -> Path | None:
    """The dataset's training split, where it has one (never its dev file)."""
    name = TRAIN.get(dataset)
    if name is None or not (data_dir / name).is_file():
        logger.warning("%s has no training split in %s: running without demonstrations", dataset, data_dir)
        return None
    return data_dir / name


def run(dataset: str, model: str, limit: int, data_dir: Path, out: Path | None, n_demos: int = 0) -> EvalReport:
    path = data_dir / DATASETS[dataset][0]
    schema = schema_for(dataset)
    demos = demo_pool(dataset, data_dir) if n_demos else None
    logger.info(
        "%s with %s (%s, first %d examples%s)", dataset, model, schema.name, limit,
        f", {n_demos} retrieved demonstrations" if demos else "",
    )  # fmt: skip
    settings = Settings(schema_path=schema, model=model)
    label = f"{dataset}-{model}" + ("-demos" if demos else "")
    predictions = out / f"{label}.predictions.jsonl" if out else None
    sampled = dataset in SAMPLED
    report = evaluate_extraction(
        path,
        settings,
        limit=None if sampled else limit,
        sample=limit if sampled else None,
        predictions=predictions,
        chunked=dataset in DOCUMENT_LEVEL,
        demos=demos,
        n_demos=n_demos,
    )
    if out:
        (out / f"{label}.report.json").write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return report


def table(rows: list[tuple[str, str, EvalReport]], limit: int) -> Table:
    t = Table(
        "dataset", "model", "P", "R", "F1", "P norm.", "R norm.", "F1 norm.", "ex/s", "invalid",
        title=f"extraction quality, dev sets, first {limit} examples",
    )  # fmt: skip
    for dataset, model, r in rows:
        s, n = r.strict, r.normalized
        scores = [f"{x:.3f}" for x in (s.precision, s.recall, s.f1, n.precision, n.recall, n.f1)]
        mark = " (interrupted)" if r.interrupted else ""
        demos = f" + {r.config.n_demos} demos" if r.config.n_demos else ""
        t.add_row(dataset, model + demos + mark, *scores, f"{r.examples_per_s:.2f}", str(r.invalid))
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=50, help="first N examples of each dev set (default 50)")
    parser.add_argument("--models", nargs="+", default=["qwen2.5-0.5b"], help="bundled model names or .gguf paths")
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--data-dir", type=Path, default=DATA, help=f"shared data folder (default {DATA})")
    parser.add_argument("--demos", action="store_true", help="few-shot demonstrations retrieved from the train split")
    parser.add_argument("--n-demos", type=int, default=4, help="demonstrations per input with --demos (default 4)")
    parser.add_argument("--out", type=Path, default=None, help="folder for each run's report and predictions")
    args = parser.parse_args()
    console = Console()
    if not console.is_terminal:  # a pipe or file gets 80 columns by default: too narrow for the table
        console = Console(width=140)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, EvalReport]] = []
    for model in args.models:
        for dataset in args.datasets:
            report = run(dataset, model, args.limit, args.data_dir, args.out, args.n_demos if args.demos else 0)
            rows.append((dataset, model, report))
            if report.interrupted:
                break
        if rows and rows[-1][2].interrupted:
            break
    console.print(table(rows, args.limit))


if __name__ == "__main__":
    main()
