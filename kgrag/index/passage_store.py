"""Documents and passages with their offsets, in SQLite (passages.sqlite in the build directory).

Beside the corpus it keeps what a build has read: each passage a build has extracted, with the best
P(D|e) any expanded entity gave it (``reads``). A later build adds to these, so the graph grows with
every build and loses a fact only when the passages that state it are gone: a document whose file was
deleted or changed is *retired* (kept, so passage ids stay the rows of the FAISS index, but never
retrieved or counted again).

Failures of the file (locked, read-only, full disk, damaged) are one line naming it (:mod:`kgrag.db`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from kgrag.db import connect, connect_readonly, guarded, sqlite_errors
from kgrag.records import Document, Passage

_SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, source TEXT, title TEXT, text TEXT, derived INTEGER);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY, doc_id TEXT, start INTEGER, end INTEGER, text TEXT, derived INTEGER);
CREATE TABLE IF NOT EXISTS reads (passage_id INTEGER PRIMARY KEY, weight REAL NOT NULL);
"""
# columns added after the first release: (table, column, declaration); added to older files on open
_ADDED_COLUMNS = [
    ("documents", "retired", "INTEGER NOT NULL DEFAULT 0"),
    ("documents", "path", "TEXT"),  # the absolute path of the file it was read from
    ("documents", "encoding", "TEXT NOT NULL DEFAULT 'utf-8'"),  # what the file's bytes were decoded as
]
_LIVE = "derived = 0 AND doc_id NOT IN (SELECT id FROM documents WHERE retired = 1)"


class PassageStore:
    """Passage ids are consecutive from 0 and equal the row of the passage's vector in FAISS."""

    # the passage ids are the rows of index.faiss, so the index goes with the passages
    IF_DAMAGED = "move it and index.faiss away and run the build again (the documents are read and embedded again)"

    @guarded
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.conn = connect(self.path)
        self.conn.executescript(_SCHEMA)
        for table, column, declaration in _ADDED_COLUMNS:
            known = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            if column not in known:
                with self.conn:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    @classmethod
    def open_readonly(cls, path: Path) -> PassageStore:
        """The store of an existing file, for reading only: nothing is created or changed, no -wal or
        -shm file is left behind, and a build directory on a read-only file system can be read."""
        store = cls.__new__(cls)
        store.path = Path(path)
        with sqlite_errors(store.path, cls.IF_DAMAGED):
            store.conn = connect_readonly(store.path)
        return store

    @guarded
    def has_document(self, doc_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM documents WHERE id = ?", (doc_id,)).fetchone() is not None

    @guarded
    def next_passage_id(self) -> int:
        row = self.conn.execute("SELECT MAX(id) FROM passages").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    @guarded
    def add(
        self, documents: Iterable[Document], passages: Iterable[Passage], paths: Mapping[str, str | None] | None = None
    ) -> None:
        """Add documents with their passages in one transaction (all or nothing); ``paths`` gives the
        absolute path of the file each document was read from, so a later build can tell it is gone."""
        paths = paths or {}
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO documents (id, source, title, text, derived, path, encoding) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(d.id, d.source, d.title, d.text, int(d.derived), paths.get(d.id), d.encoding) for d in documents],
            )
            self.conn.executemany(
                "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?)",
                [(p.id, p.doc_id, p.start, p.end, p.text, int(p.derived)) for p in passages],
            )

    @guarded
    def passage(self, passage_id: int) -> Passage:
        row = self.conn.execute("SELECT * FROM passages WHERE id = ?", (passage_id,)).fetchone()
        return self._passage(row)

    @guarded
    def passages_from(self, first_id: int, limit: int | None = None) -> list[Passage]:
        rows = self.conn.execute(
            "SELECT * FROM passages WHERE id >= ? ORDER BY id LIMIT ?", (first_id, -1 if limit is None else limit)
        ).fetchall()
        return [self._passage(r) for r in rows]

    @guarded
    def document(self, doc_id: str) -> Document | None:
        cursor = self.conn.execute("SELECT * FROM documents WHERE id = ?", (doc_id,))
        row = cursor.fetchone()
        if row is None:
            return None
        # by name: a file opened read-only may predate the columns added since (its encoding is utf-8)
        values = dict(zip((column[0] for column in cursor.description), row))
        return Document(
            id=values["id"],
            source=values["source"],
            title=values["title"],
            text=values["text"],
            derived=bool(values["derived"]),
            encoding=values.get("encoding") or "utf-8",
        )

    @guarded
    def document_texts(self) -> list[str]:
        """The text of every document of the corpus (retired ones and verbalised neighbourhoods left out)."""
        return [row[0] for row in self.conn.execute("SELECT text FROM documents WHERE derived = 0 AND retired = 0")]

    @guarded
    def counts(self) -> dict[str, int]:
        """Documents and passages of the corpus (retired ones left out), and neighbourhood passages."""
        docs = self.conn.execute("SELECT COUNT(*) FROM documents WHERE derived = 0 AND retired = 0").fetchone()[0]
        passages = self.conn.execute(f"SELECT COUNT(*) FROM passages WHERE {_LIVE}").fetchone()[0]
        derived = self.conn.execute("SELECT COUNT(*) FROM passages WHERE derived = 1").fetchone()[0]
        return {"documents": docs, "passages": passages, "derived_passages": derived}

    # -- documents that are gone --------------------------------------------------------------------
    @guarded
    def sources(self) -> dict[str, tuple[str | None, bool]]:
        """Document id -> (absolute file path or None when not known, retired) of every document read
        from a file."""
        rows = self.conn.execute("SELECT id, path, retired FROM documents WHERE derived = 0")
        return {row[0]: (row[1], bool(row[2])) for row in rows}

    @guarded
    def set_retired(self, doc_ids: Iterable[str], retired: bool) -> None:
        with self.conn:
            self.conn.executemany("UPDATE documents SET retired = ? WHERE id = ?", [(int(retired), d) for d in doc_ids])

    @guarded
    def retired(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT id FROM documents WHERE retired = 1")}

    # -- what builds have read ----------------------------------------------------------------------
    @guarded
    def reads(self) -> dict[int, float]:
        """Passage id -> best P(D|e) of every live passage a build has read."""
        rows = self.conn.execute(
            "SELECT r.passage_id, r.weight FROM reads r JOIN passages p ON p.id = r.passage_id "
            "JOIN documents d ON d.id = p.doc_id WHERE p.derived = 0 AND d.retired = 0"
        )
        return {int(row[0]): float(row[1]) for row in rows}

    @guarded
    def add_reads(self, weights: Mapping[int, float]) -> None:
        """Remember that these passages were read, keeping the higher weight of each."""
        with self.conn:
            self.conn.executemany(
                "INSERT INTO reads VALUES (?, ?) ON CONFLICT(passage_id) DO UPDATE SET weight = "
                "MAX(weight, excluded.weight)",
                list(weights.items()),
            )

    @guarded
    def forget_reads(self) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM reads")

    @staticmethod
    def _passage(row: tuple) -> Passage:
        return Passage(id=row[0], doc_id=row[1], start=row[2], end=row[3], text=row[4], derived=bool(row[5]))

    def close(self) -> None:
        self.conn.close()
