"""Small corpora the tests build from, and writing one into a folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

# three short documents about the Curies: the end-to-end tests with real models build from these
CURIES = {
    "marie.txt": "Marie Curie was a Polish physicist and chemist. In 1895 Marie Curie married Pierre Curie, "
    "a French physicist. Marie Curie was born in Warsaw.",
    "pierre.txt": "Pierre Curie was a French physicist. Pierre Curie was born in Paris. Pierre Curie shared "
    "the 1903 Nobel Prize in Physics with Marie Curie and Henri Becquerel.",
    "polonium.txt": "Polonium is a chemical element. Polonium was discovered in 1898 by Marie Curie.",
}


def write_corpus(folder: Path, corpus: Mapping[str, str]) -> Path:
    """Each document of ``corpus`` (file name -> text) as a UTF-8 file in ``folder``; returns ``folder``."""
    for name, text in corpus.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder
