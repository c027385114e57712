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
