"""On-disk extraction cache (SQLite): one row per (passage text, model, schema, prompt settings).

Failures of the file (locked, read-only, full disk, damaged) are one line naming it (:mod:`kgrag.db`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from kgrag.db import connect, guarded
from kgrag.records import Extraction


def cache_key(passage_text: str, *parts: Any) -> str:
    payload = json.dumps([passage_text, *parts], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ExtractionCache:
    """Each result is committed as soon as it exists, so an interrupted build loses nothing."""

    IF_DAMAGED = "move it away and run the build again (its passages are sent to the model again)"

    @guarded
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.conn = connect(self.path)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS extractions (key TEXT PRIMARY KEY, result TEXT NOT NULL)")
        self.conn.commit()

    @guarded
    def get(self, key: str) -> Extraction | None:
        row = self.conn.execute("SELECT result FROM extractions WHERE key = ?", (key,)).fetchone()
        return Extraction.model_validate_json(row[0]) if row else None

    @guarded
    def put(self, key: str, extraction: Extraction) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO extractions (key, result) VALUES (?, ?)",
                (key, extraction.model_dump_json()),
            )

    @guarded
    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM extractions").fetchone()[0])

    def close(self) -> None:
        self.conn.close()
