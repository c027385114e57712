"""The ``kgrag finetune`` command: LoRA fine-tuning of the generator on (text, triples) JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from kgrag.cli.common import friendly_errors, setup_logging
from kgrag.errors import KgragError


def finetune_command(
    train: Annotated[Optional[Path], typer.Option(help="training JSONL ({id, text, triples[, entities]})")] = None,
    schema: Annotated[
        Optional[Path],
        typer.Option(
            metavar="NAME|FILE", help="graph schema the adapter learns: bundled name (kgrag schemas) or YAML/JSON file"
        ),
    ] = None,
    base: Annotated[Optional[str], typer.Option(help="base model: bundled name or .gguf path")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder for the adapter (use it as --model)")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="passes over the training split")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="stop after N optimizer steps")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="examples per forward pass")] = None,
    grad_accum: Annotated[Optional[int], typer.Option(help="forward passes per optimizer step")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="peak learning rate")] = None,
    lora_r: Annotated[Optional[int], typer.Option(help="LoRA rank (adapter size grows with it)")] = None,
    lora_alpha: Annotated[Optional[float], typer.Option(help="LoRA scaling alpha (commonly 2x the rank)")] = None,
    target_modules: Annotated[
        Optional[str],
        typer.Option(
            help="comma-separated layers to adapt (default: q_proj,k_proj,v_proj,o_proj; "
            "add gate_proj,up_proj,down_proj for all linear layers)"
        ),
    ] = None,
    precision: Annotated[
        Optional[str],
        typer.Option(help="auto|fp32|fp16|bf16 (auto: bf16/fp16 on GPU; bf16 on CPUs with native bf16, else fp32)"),
    ] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: cuda when available)")] = None,
    limit: Annotated[Optional[int], typer.Option(help="first N training examples")] = None,
    eval_every: Annotated[Optional[int], typer.Option(help="dev loss every N steps")] = None,
    save_every: Annotated[Optional[int], typer.Option(help="checkpoint every N steps")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for torch")] = None,
    config: Annotated[Optional[Path], typer.Option(help="finetune settings YAML (options override it)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the newest checkpoint in --out")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Fine-tune the generator with LoRA; the adapter then works as `--model OUT` in build and eval."""
    setup_logging(verbose)
    overrides = {
        "train": train,
        "schema_path": schema,
        "base": base,
        "out": out,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "learning_rate": lr,
        "lora_r": lora_r,
        "lora_alpha": lora_alpha,
        "target_modules": [m.strip() for m in target_modules.split(",") if m.strip()] if target_modules else None,
        "precision": precision,
        "device": device,
        "limit": limit,
        "eval_every": eval_every,
        "save_every": save_every,
        "threads": threads,
    }
    friendly_errors(_run)(config, overrides, resume)


def _run(config: Path | None, overrides: dict[str, object], resume: bool) -> None:
    from kgrag.finetune.settings import FinetuneSettings
    from kgrag.finetune.trainer import Trainer

    for needed, option in (("train", "--train"), ("schema_path", "--schema"), ("out", "--out")):
        if overrides.get(needed) is None and config is None:
            raise KgragError(f"missing option {option}")
    settings = FinetuneSettings.load(config, **overrides)
    if not Path(settings.train).is_file():
        raise KgragError(f"no training file {settings.train}")
    result = Trainer(settings).run(resume=resume)
    table = Table(title=f"fine-tune: {result.status}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("steps", f"{result.steps}/{result.total_steps}"),
        ("train / dev examples", f"{result.train_examples} / {result.dev_examples}"),
        ("last train loss", f"{result.last_loss:.4f}" if result.last_loss is not None else "-"),
        ("best dev loss", f"{result.best_dev_loss:.4f}" if result.best_dev_loss is not None else "-"),
        ("tokens/s (wall, incl. loading)", f"{result.tokens_per_s:.1f}"),
        ("device / precision", f"{result.device} / {result.precision}"),
        ("peak RSS", f"{result.peak_rss_mb:.0f} MB"),
        ("time", f"{result.seconds:.0f} s"),
        ("training time, all legs", f"{result.total_seconds:.0f} s in {result.legs} leg(s)"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    if result.status == "interrupted":
        Console(stderr=True).print(
            f"[yellow]interrupted:[/yellow] checkpoint at step {result.steps} saved in {result.out}/checkpoints; "
            "run the same command with --resume to continue",
            soft_wrap=True,
        )
        raise typer.Exit(130)
    Console().print(f"adapter: {result.out}  (use --model {result.out})", highlight=False)
