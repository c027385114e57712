"""Command-line options that several ``kgrag`` commands share, declared once."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ContinueThreshold = Annotated[
    Optional[float],
    typer.Option(
        min=0.01, max=1.0, help="write another triple when P(continue the list) reaches this share (greedy: 0.5)"
    ),
]
MinTripleProb = Annotated[
    Optional[float],
    typer.Option(
        min=0.0,
        max=1.0,
        help="drop triples whose P(t|e,D) is lower (one model; a mixture uses ensemble_min_prob instead)",
    ),
]
ModelOption = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        help="bundled model or adapter, .gguf or adapter folder; several, comma-separated, mix their triples",
    ),
]
