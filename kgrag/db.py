"""SQLite files of a build directory (passages.sqlite, cache.sqlite): opening them for writing and
for reading, and their failures as one line naming the file and what to do.

Writers use WAL mode, so a reader never waits for a build. A reader opens the file without creating
it and cannot write to it (``PRAGMA query_only``); it still joins the WAL like any connection, so
the last connection to close removes ``-wal`` and ``-shm`` and a read leaves nothing behind (a
``mode=ro`` connection would leave both, as it may not delete them). Where nothing beside the file
can be written (a read-only file system or folder), no writer can be using it either, and the reader
opens it as immutable, which needs no ``-shm``.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from kgrag.errors import KgragError
from kgrag.io import filesystem_problem, os_error, where

BUSY_TIMEOUT = 10.0  # seconds a statement waits for another process's write lock before giving up

_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_CANNOT_WRITE = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_IOERR}
_NOT_WRITABLE = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM}  # e.g. no -shm possible
_FALLBACK = {
    sqlite3.SQLITE_IOERR: "disk I/O error: the disk may be failing or full",
    sqlite3.SQLITE_CANTOPEN: "unable to open the file: check that it and its folder can be read and written",
}
_DAMAGED = {
    sqlite3.SQLITE_CORRUPT: "is damaged (corrupt)",
    sqlite3.SQLITE_NOTADB: "is not a SQLite database (corrupt?)",
}


def describe(path: Path | None, exc: sqlite3.Error | OSError, if_damaged: str) -> KgragError | None:
    """One line for a failure of the SQLite file at ``path`` (None when it is not one of the ordinary
    ones: a locked, unwritable, full or damaged file); ``if_damaged`` says what to do when the file
    is damaged ("move it away and run the build again")."""
    if isinstance(exc, OSError):
        return os_error("open", path, exc) if path is not None else None
    name = where(path) if path is not None else "a SQLite database"
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if code is not None else None
    if primary in _BUSY:
        return KgragError(
            f"{name} is locked by another process (another kgrag command, or a program that has it open): "
            "wait for it to finish and run the command again"
        )
    if primary == sqlite3.SQLITE_FULL:
        return KgragError(f"cannot write {name}: the disk is full: free some space and run the command again")
    if primary in _DAMAGED:
        return KgragError(f"{name} {_DAMAGED[primary]}: {if_damaged}")
    if primary in _CANNOT_WRITE:
        cause = (filesystem_problem(path) if path is not None else None) or _FALLBACK.get(primary, str(exc))
        action = "open" if primary == sqlite3.SQLITE_CANTOPEN else "write"
        return KgragError(f"cannot {action} {name}: {cause}")
    return None


@contextmanager
def sqlite_errors(path: Path, if_damaged: str) -> Iterator[None]:
    """Turn the ordinary failures of the SQLite file at ``path`` into one :class:`KgragError`."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        error = describe(path, exc, if_damaged)
        if error is None:
            raise
        raise error from exc


class _SQLiteFile(Protocol):
    path: Path
    IF_DAMAGED: str


_Method = TypeVar("_Method", bound=Callable[..., Any])


def guarded(method: _Method) -> _Method:
    """A store method whose SQLite failures are one line naming the store's file (``self.path``),
    with the store's ``IF_DAMAGED`` advice."""

    @functools.wraps(method)
    def wrapper(self: _SQLiteFile, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            error = describe(getattr(self, "path", None), exc, self.IF_DAMAGED)
            if error is None:
                raise
            raise error from exc

    return wrapper  # type: ignore[return-value]


def connect(path: Path) -> sqlite3.Connection:
    """A connection that may write (and creates the file), waiting up to :data:`BUSY_TIMEOUT` for
    another process's write lock."""
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT)


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that only reads the existing file at ``path`` and leaves nothing beside it once
    closed (module doc); a missing file is a :class:`KgragError`. Raises ``sqlite3.Error`` as
    :func:`connect`'s statements do."""
    path = Path(path)
    if not path.is_file():
        raise KgragError(f"{where(path)} is missing: run `kgrag build` again to make it")
    uri = f"file:{quote(str(path.resolve()))}"
    conn = sqlite3.connect(f"{uri}?mode=rw", uri=True, timeout=BUSY_TIMEOUT)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file and its WAL now
        return conn
    except sqlite3.Error as exc:
        conn.close()
        if not isinstance(exc, sqlite3.OperationalError) or exc.sqlite_errorcode & 0xFF not in _NOT_WRITABLE:
            raise
    # nothing can be written beside the file, so no writer is using it, unless one elsewhere left a -wal
    wal = path.with_name(path.name + "-wal")
    conn = sqlite3.connect(f"{uri}?mode=ro{'' if wal.exists() else '&immutable=1'}", uri=True, timeout=BUSY_TIMEOUT)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        conn.close()
        raise
    return conn
