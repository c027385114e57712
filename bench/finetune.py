"""Fine-tuning speed (a benchmark, not a timed test): optimizer steps/s, tokens/s and peak memory
per precision, on CPU and, when torch sees one, on a CUDA GPU.

It runs the training step of ``kgrag finetune`` (LoRA on q/k/v/o, the same prompts and collation)
for a few steps per precision on CoNLL04 training examples and prints one table.

    .venv/bin/python bench/finetune.py                        # 0.5B, fp32 and bf16 on CPU
    .venv/bin/python bench/finetune.py --base smollm2-135m --steps 5
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from kgrag.errors import KgragError
from kgrag.finetune.base_model import load_model, load_tokenizer
from kgrag.finetune.data import collate, read_pairs, tokenize_all
from kgrag.finetune.precision import select_plan
from kgrag.finetune.settings import FinetuneSettings
from kgrag.finetune.trainer import add_lora
from kgrag.generator.registry import verified_gguf
from kgrag.schema import GraphSchema

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "conll04" / "train.jsonl"
logger = logging.getLogger("bench.finetune")


def measure(model: Any, batches: list[dict[str, Any]], precision: str, device: str, budget_s: float) -> dict[str, Any]:
    """Optimizer steps of one micro-batch each until the batches or the time budget run out."""
    plan = select_plan(precision, device=device)
    model.to(plan.device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler(plan.device, enabled=plan.grad_scaler)
    if plan.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    steps, tokens, started = 0, 0, time.perf_counter()
    for i, batch in enumerate([batches[0], *batches]):  # the first, untimed, warms kernels and allocators
        if i == 1:
            steps, tokens, started = 0, 0, time.perf_counter()
        batch = {k: v.to(plan.device) for k, v in batch.items()}
        with plan.autocast:
            loss = model(**batch).loss
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if plan.device == "cuda":
            torch.cuda.synchronize()
        steps += 1
        tokens += int(batch["attention_mask"].sum())
        if time.perf_counter() - started > budget_s:
            break
    seconds = time.perf_counter() - started
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if plan.device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "device": plan.device,
        "precision": plan.precision,
        "steps": steps,
        "steps_per_s": steps / seconds,
        "tokens_per_s": tokens / seconds,
        "loss": loss.item(),
        "peak_mb": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="qwen2.5-0.5b")
    parser.add_argument("--train", type=Path, default=TRAIN)
    parser.add_argument("--schema", type=Path, default=Path("conll04"), help="bundled name or YAML/JSON file")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per precision")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--budget", type=float, default=120, help="seconds per precision at most")
    parser.add_argument("--precisions", nargs="+", default=None, help="default: fp32 bf16 (+ fp16 on GPU), in order")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    settings = FinetuneSettings(train=args.train, schema_path=args.schema, base=args.base, out=Path("/nonexistent"))
    path, _ = verified_gguf(args.base)
    tokenizer = load_tokenizer(path)
    schema = GraphSchema.load(args.schema)
    need = args.steps * args.batch_size
    examples = tokenize_all(tokenizer, read_pairs(args.train, schema, settings.max_triples, need), 512)
    batches = [
        collate(examples[i : i + args.batch_size], int(tokenizer.pad_token_id))
        for i in range(0, len(examples), args.batch_size)
    ]
    model = add_lora(load_model(path), settings)

    runs: list[tuple[str, str]] = [("cpu", p) for p in (args.precisions or ["fp32", "bf16"]) if p != "fp16"]
    if torch.cuda.is_available():
        gpu = args.precisions or ["fp32", "fp16", "bf16"]
        runs += [("cuda", p) for p in gpu]
    table = Table(title=f"fine-tuning speed: {args.base}, LoRA r={settings.lora_r}, batch {args.batch_size}")
    for column in ("device", "precision", "steps", "steps/s", "tokens/s", "last loss", "peak MB"):
        table.add_column(column, justify="right")
    for device, precision in runs:
        try:
            row = measure(model, batches, precision, device, args.budget)
        except KgragError as exc:
            logger.warning("%s %s: %s", device, precision, exc)
            continue
        logger.info("%s", row)
        table.add_row(
            row["device"], row["precision"], str(row["steps"]), f"{row['steps_per_s']:.3f}",
            f"{row['tokens_per_s']:.1f}", f"{row['loss']:.3f}", f"{row['peak_mb']:.0f}",
        )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
