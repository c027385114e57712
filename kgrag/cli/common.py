"""What every ``kgrag`` command shares: the consoles, logging set-up and one-line errors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from kgrag.errors import KgragError

console = Console()
err = Console(stderr=True)

_NOISY = ("sentence_transformers", "httpx", "faiss", "urllib3", "filelock", "gguf", "matplotlib")


def setup_logging(verbose: bool) -> None:
    """kgrag's log lines on stderr through rich; DEBUG with ``-v``; chatty libraries kept at WARNING."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
        force=True,
    )
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """KgragError → one red line and exit 1; Ctrl-C → a note that the work is saved, exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KgragError as exc:
            # one line, however long; escaped, since messages quote names and text from the user's documents
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print(
                "[yellow]interrupted:[/yellow] finished work is saved; run the same command again to resume",
                soft_wrap=True,
            )
            raise typer.Exit(130) from None

    return wrapper
