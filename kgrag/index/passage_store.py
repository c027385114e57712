"""Documents and passages with their offsets, in SQLite (passages.sqlite in the build directory)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from kgrag.records import Document, Passage


class PassageStore:
    """Passage ids are consecutive from 0 and equal the row of the passage's vector in FAISS."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.executescript(
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS documents (
                id TEXT PRIMARY KEY, source TEXT, title TEXT, text TEXT, derived INTEGER);
            CREATE TABLE IF NOT EXISTS passages (
                id INTEGER PRIMARY KEY, doc_id TEXT, start INTEGER, end INTEGER, text TEXT, derived INTEGER);
            """
        )

    def has_document(self, doc_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM documents WHERE id = ?", (doc_id,)).fetchone() is not None

    def next_passage_id(self) -> int:
        row = self.conn.execute("SELECT MAX(id) FROM passages").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def add(self, documents: Iterable[Document], passages: Iterable[Passage]) -> None:
        """Add documents with their passages in one transaction (all or nothing)."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO documents VALUES (?, ?, ?, ?, ?)",
                [(d.id, d.source, d.title, d.text, int(d.derived)) for d in documents],
            )
            self.conn.executemany(
                "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?)",
                [(p.id, p.doc_id, p.start, p.end, p.text, int(p.derived)) for p in passages],
            )

    def passage(self, passage_id: int) -> Passage:
        row = self.conn.execute("SELECT * FROM passages WHERE id = ?", (passage_id,)).fetchone()
        return self._passage(row)

    def passages_from(self, first_id: int) -> list[Passage]:
        rows = self.conn.execute("SELECT * FROM passages WHERE id >= ? ORDER BY id", (first_id,)).fetchall()
        return [self._passage(r) for r in rows]

    def document(self, doc_id: str) -> Document | None:
        row = self.conn.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        return Document(id=row[0], source=row[1], title=row[2], text=row[3], derived=bool(row[4]))

    def counts(self) -> dict[str, int]:
        docs = self.conn.execute("SELECT COUNT(*) FROM documents WHERE derived = 0").fetchone()[0]
        passages = self.conn.execute("SELECT COUNT(*) FROM passages WHERE derived = 0").fetchone()[0]
        derived = self.conn.execute("SELECT COUNT(*) FROM passages WHERE derived = 1").fetchone()[0]
        return {"documents": docs, "passages": passages, "derived_passages": derived}

    @staticmethod
    def _passage(row: tuple) -> Passage:
        return Passage(id=row[0], doc_id=row[1], start=row[2], end=row[3], text=row[4], derived=bool(row[5]))

    def close(self) -> None:
        self.conn.close()
