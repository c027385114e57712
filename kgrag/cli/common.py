"""What every ``kgrag`` command shares: the consoles, logging set-up and one-line errors."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from kgrag.db import describe
from kgrag.errors import KgragError
from kgrag.io import os_error_cause

console = Console()
err = Console(stderr=True)

logger = logging.getLogger(__name__)
_NOISY = ("sentence_transformers", "httpx", "httpcore", "faiss", "urllib3", "filelock", "gguf", "matplotlib")


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


def _one_line(exc: OSError | sqlite3.Error) -> str:
    """An operating system or SQLite error that no module turned into a KgragError, as one line."""
    if isinstance(exc, OSError):
        cause = os_error_cause(exc)
        return f"{exc.filename}: {cause}" if exc.filename is not None else cause
    known = describe(None, exc, "move it away and run the command again")
    return str(known) if known is not None else f"SQLite: {exc}"


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """KgragError, and any stray OSError or SQLite error, → one red line and exit 1 (the traceback is
    logged at DEBUG, so ``-v`` shows it); Ctrl-C → a note that the work is saved, exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (KgragError, OSError, sqlite3.Error) as exc:
            logger.debug("traceback of the error below", exc_info=True)
            message = str(exc) if isinstance(exc, KgragError) else _one_line(exc)
            # one line, however long; escaped: messages quote names and text from the user's documents
            err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print(
                "[yellow]interrupted:[/yellow] finished work is saved; run the same command again to resume",
                soft_wrap=True,
            )
            raise typer.Exit(130) from None

    return wrapper
