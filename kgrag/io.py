"""File I/O used everywhere: atomic writes, JSONL reading, streamed SHA-256 and what an operating
system error means for the user, one implementation each.

An atomic write goes to a uniquely named temporary file beside the target and then replaces the
target in one ``os.replace``, so a reader (or a crash) sees either the old file or the new one, never
half of one, and two writers never share a temporary file. A write that fails (a full or read-only
disk, no permission) is one :class:`KgragError` naming the target and what to do.
"""

from __future__ import annotations

import errno
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

# what an errno means for the user, and what to do about it
_CAUSES = {
    errno.EROFS: "it is on a read-only file system: use a writable location (or remount it read-write)",
    errno.EACCES: "permission denied: check the owner and permissions of the file and its folder",
    errno.EPERM: "permission denied: check the owner and permissions of the file and its folder",
    errno.ENOSPC: "the disk is full: free some space and run the command again",
    errno.EDQUOT: "the disk quota is exceeded: free some space and run the command again",
    errno.EIO: "input/output error: the disk may be failing",
    errno.ENOENT: "no such file or directory",
}


def os_error_cause(exc: OSError) -> str:
    """What an ``OSError`` means, with what to do when that is clear ("the disk is full: free some
    space and run the command again")."""
    return _CAUSES.get(exc.errno or 0) or exc.strerror or str(exc)


def filesystem_problem(path: Path) -> str | None:
    """Why ``path`` (or a new file beside it) cannot be written, when the file system says so: a
    read-only file system, no permission, a full disk; None when none of these is seen. For errors
    that carry no errno (SQLite's, FAISS's)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return _CAUSES[errno.EROFS]
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return _CAUSES[errno.EACCES]
    if stats.f_bavail == 0:
        return _CAUSES[errno.ENOSPC]
    return None


def where(path: Path) -> str:
    """``passages.sqlite in build/x``: a build directory's file as messages name it."""
    path = Path(path)
    return f"{path.name} in {path.parent}"


def os_error(action: str, path: Path, exc: OSError) -> KgragError:
    """``cannot write /x/graph.json: the disk is full: free some space and run the command again``."""
    return KgragError(f"cannot {action} {path}: {os_error_cause(exc)}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` for a writer that needs a file name (FAISS, GraphML,
    GGUF); when the block ends without error it replaces ``path``, otherwise it is removed. An
    ``OSError`` about the target or the temporary file (or about neither, as a failed write has no
    file name) becomes one :class:`KgragError` naming ``path``."""
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise os_error("write", path, exc) from exc
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes it 0600; the final file gets the usual mode
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename in (None, str(tmp), str(path), tmp, path):
            raise os_error("write", path, exc) from exc
        raise
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
