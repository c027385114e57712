"""The loss curve of a run: a JSON log and a PNG plot of training and dev loss."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, Field

from kgrag.io import write_json_atomic

logger = logging.getLogger(__name__)


class TrainPoint(BaseModel):
    step: int
    loss: float
    lr: float
    tokens_per_s: float


class DevPoint(BaseModel):
    step: int
    loss: float


class LossLog(BaseModel):
    train: list[TrainPoint] = Field(default_factory=list)
    dev: list[DevPoint] = Field(default_factory=list)

    def add_train(self, step: int, loss: float, lr: float, tokens_per_s: float) -> None:
        self.train.append(TrainPoint(step=step, loss=loss, lr=lr, tokens_per_s=tokens_per_s))

    def add_dev(self, step: int, loss: float) -> None:
        self.dev.append(DevPoint(step=step, loss=loss))

    def write(self, path: Path) -> None:
        write_json_atomic(path, self.model_dump(), newline=True)


def plot_losses(log: LossLog, path: Path) -> Path | None:
    """Training loss per step and dev loss per evaluation, saved as a PNG (None when there is nothing)."""
    if not log.train:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([p.step for p in log.train], [p.loss for p in log.train], label="train loss", linewidth=1)
    if log.dev:
        ax.plot([p.step for p in log.dev], [p.loss for p in log.dev], "o-", label="dev loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (answer tokens)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
