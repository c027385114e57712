"""The training configuration: one pydantic object, filled by ``kgrag finetune`` options, a YAML
file or Python, and saved next to the adapter so a run can be reproduced and resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kgrag.config import settings_from


class FinetuneSettings(BaseModel):
    """Everything that shapes a fine-tuning run."""

    model_config = ConfigDict(extra="forbid")

    train: Path = Field(description="JSONL of {text, triples[, entities]} training examples")
    schema_path: Path = Field(
        description="graph schema the adapter is trained for: a bundled name (kgrag schemas) or a YAML/JSON file"
    )
    base: str = Field(default="qwen2.5-0.5b", description="bundled model name or path to a .gguf")
    out: Path = Field(description="output folder for the adapter, logs and checkpoints")
    limit: int | None = Field(default=None, ge=1, description="use only the first N training examples")

    epochs: float = Field(default=1.0, gt=0, description="passes over the training split (may be fractional)")
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many optimizer steps")
    batch_size: int = Field(default=1, ge=1, description="examples per forward pass")
    grad_accum: int = Field(default=8, ge=1, description="forward passes per optimizer step")
    learning_rate: float = Field(default=2e-4, gt=0)
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1, description="share of steps with linear warm-up")
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0, description="gradient clipping norm")
    max_seq_len: int = Field(default=512, ge=32, description="longer examples are skipped")

    lora_r: int = Field(default=16, ge=1)
    lora_alpha: float = Field(default=32.0, gt=0)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])

    dev_fraction: float = Field(default=0.05, ge=0, lt=1, description="held-out share for dev loss")
    max_dev: int = Field(default=48, ge=0, description="at most this many dev examples")
    eval_every: int = Field(default=25, ge=1, description="dev loss every N optimizer steps")
    save_every: int = Field(default=25, ge=1, description="checkpoint every N optimizer steps")
    keep_checkpoints: int = Field(default=2, ge=1)
    patience: int = Field(default=4, ge=1, description="stop after N dev evaluations without improvement")

    max_triples: int = Field(default=6, ge=1, description="maxItems of the triple list, as in kgrag build")
    precision: str = Field(default="auto", description="auto|fp32|fp16|bf16")
    device: str | None = Field(default=None, description="cpu or cuda; default: cuda when available")
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (default: all cores)")
    seed: int = 0

    @classmethod
    def load(cls, yaml_path: Path | None = None, **overrides: Any) -> FinetuneSettings:
        """Settings from an optional YAML file, then overrides (None values are ignored)."""
        return settings_from(cls, yaml_path, overrides)
