"""File I/O used everywhere: atomic writes, JSONL reading and streamed SHA-256, one implementation each.

An atomic write goes to a uniquely named temporary file beside the target and then replaces the
target in one ``os.replace``, so a reader (or a crash) sees either the old file or the new one, never
half of one, and two writers never share a temporary file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kgrag.errors import KgragError

_CHUNK = 8 * 1024 * 1024


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` for a writer that needs a file name (FAISS, GraphML,
    GGUF); when the block ends without error it replaces ``path``, otherwise it is removed."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes it 0600; the final file gets the usual mode
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json_atomic(path: Path, data: Any, newline: bool = False) -> Path:
    """Write ``data`` as indented UTF-8 JSON to ``path`` atomically (a final newline when asked)."""
    return write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=1) + ("\n" if newline else ""))


def read_lines(path: Path, limit: int | None = None, what: str = "dataset") -> list[str]:
    """The first ``limit`` non-empty lines of a JSONL file (all when limit is None); a file that
    cannot be read is one :class:`KgragError` naming it as ``what``."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            lines = [line for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise KgragError(f"cannot read {what} {path}: {exc}") from exc
    return lines if limit is None else lines[:limit]


def sha256_file(path: Path) -> str:
    """Lower-case hex SHA-256 of the file at ``path``, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
