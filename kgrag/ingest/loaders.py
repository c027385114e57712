"""Read input files and folders into ``Document`` records (txt, md, html, jsonl, pdf).

Text files are UTF-8 or, failing that, whatever encoding charset-normalizer finds in them; each
``Document`` records the one it was read with."""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bs4 import BeautifulSoup, Comment
from charset_normalizer import from_bytes

from kgrag.errors import KgragError
from kgrag.records import Document

logger = logging.getLogger(__name__)

TITLE_MAX_CHARS = 120
BINARY_SNIFF_BYTES = 8192
_BLOCK = "\ue000"  # private-use marks for HTML block and line breaks, never present in real text
_LINE = "\ue001"
# fmt: off
_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul",
)
# fmt: on
_DROP_TAGS = ("script", "style", "noscript", "template", "head")


class _Skip(Exception):
    """Raised inside a loader when a file (or a jsonl line) has to be skipped; the message is the reason."""


def load_documents(paths: Sequence[Path]) -> list[Document]:
    """Load every supported file under ``paths`` (files or folders), one ``Document`` per distinct text."""
    files = [file for path in paths for file in _expand(Path(path))]
    documents: dict[str, Document] = {}
    for file in files:
        for document in _load_file(file):
            if document.id in documents:
                logger.info("%s repeats the text of %s; kept once", document.source, documents[document.id].source)
                continue
            documents[document.id] = document
    if not documents:
        raise KgragError(f"none of the inputs had readable text ({len(files)} file(s) looked at; see warnings)")
    return list(documents.values())


def document_id(text: str) -> str:
    """Stable content hash: the first 16 hex digits of sha256 of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _expand(path: Path) -> Iterator[Path]:
    """The path itself if it is a file, else the files under it: recursive, sorted, hidden ones left out."""
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from _walk(path)
    else:
        raise KgragError(f"no such file or folder: {path}")


def _walk(folder: Path) -> Iterator[Path]:
    try:
        children = sorted(folder.iterdir())
    except OSError as exc:
        logger.warning("skipping %s: cannot list folder (%s)", folder, exc)
        return
    for child in children:
        if child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _walk(child)
        elif child.is_file():
            yield child


def _load_file(path: Path) -> list[Document]:
    """The documents of one file, or none (with a warning) when it cannot be used."""
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        logger.warning("skipping %s: unsupported file type %r", path, path.suffix or "(no extension)")
        return []
    try:
        return loader(path)
    except _Skip as exc:
        logger.warning("skipping %s: %s", path, exc)
        return []


def _make(source: str, text: str, title: str | None, fallback_title: str, encoding: str = "utf-8") -> Document:
    text = text.strip()
    if not text:
        raise _Skip("empty (no text after stripping whitespace)")
    title = title or _title(text, fallback_title)
    return Document(id=document_id(text), source=source, title=title, text=text, encoding=encoding)


def _title(text: str, fallback: str) -> str:
    """First non-empty line, trimmed to 120 characters; the fallback when there is none."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:TITLE_MAX_CHARS].rstrip()
    return fallback


def _read_text(path: Path) -> tuple[str, str]:
    """(text, encoding) of a text file, newlines normalised and a byte-order mark dropped; ``_Skip``
    for unreadable or binary files and for bytes that no text encoding fits.

    UTF-8 first; otherwise the encoding that charset-normalizer finds (see :func:`_detect`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Skip(f"cannot read ({exc.strerror or exc})") from exc
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise _Skip("binary file (NUL bytes)")
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"  # plain UTF-8, minus a byte-order mark if there is one
    except UnicodeDecodeError as exc:
        encoding = _detect(data)
        if encoding is None:
            raise _Skip(f"not UTF-8 (bad byte at offset {exc.start}) and no other text encoding fits") from exc
        text = data.decode(encoding).removeprefix("\ufeff")
        logger.info("read %s as %s", path, encoding)
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


def _detect(data: bytes) -> str | None:
    """The text encoding of bytes that are not UTF-8, as a Python codec name; None when none fits.

    charset-normalizer's best match, except that Windows-1252 wins whenever it decodes the bytes with
    no more disorder than that match: charset-normalizer ranks the code pages that fit Western text
    equally well by name (cp1250 first, which turns "naïve" into "naďve") or by a language score that
    misfires on short texts (Spanish read as cp1257), and cp1252 is by far the most common non-UTF-8
    text encoding (browsers read "latin-1" as it). cp1252 text without any of its extra characters
    (bytes 0x80-0x9f: curly quotes, dashes, the euro sign) is reported as ISO-8859-1, which decodes
    it identically."""
    best = from_bytes(data).best()
    western = from_bytes(data, cp_isolation=["cp1252"]).best()
    if western is not None and (best is None or western.chaos <= best.chaos):
        latin1 = not any(0x80 <= byte <= 0x9F for byte in data)
        return codecs.lookup("latin-1" if latin1 else "cp1252").name
    return codecs.lookup(best.encoding).name if best is not None else None


def _load_plain(path: Path) -> list[Document]:
    text, encoding = _read_text(path)
    return [_make(str(path), text, None, path.stem, encoding)]


def _load_html(path: Path) -> list[Document]:
    html, encoding = _read_text(path)
    return [_make(str(path), html_to_text(html), None, path.stem, encoding)]


def html_to_text(html: str) -> str:
    """Visible text of an HTML page: tags stripped, script/style dropped, blocks as blank-line paragraphs."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before(_BLOCK)
        tag.insert_after(_BLOCK)
    for br in soup.find_all("br"):
        br.replace_with(_LINE)
    flat = re.sub(r"\s+", " ", soup.get_text())
    paragraphs = ("\n".join(line.strip() for line in block.split(_LINE)).strip() for block in flat.split(_BLOCK))
    return "\n\n".join(p for p in paragraphs if p)


def _load_jsonl(path: Path) -> list[Document]:
    documents = []
    text, encoding = _read_text(path)
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        source = f"{path}#L{number}"
        try:
            documents.append(_jsonl_document(line, source, f"{path.name}:{number}", encoding))
        except _Skip as exc:
            logger.warning("skipping %s: %s", source, exc)
    if not documents:
        raise _Skip("no line had a non-empty 'text' field")
    return documents


def _jsonl_document(line: str, source: str, fallback_title: str, encoding: str) -> Document:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _Skip(f"invalid JSON ({exc.msg})") from exc
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise _Skip("expected an object with a string 'text' field")
    title = next((_title(str(record[k]), "") for k in ("title", "id") if record.get(k) not in (None, "")), "")
    return _make(source, record["text"].replace("\r\n", "\n"), title or fallback_title, fallback_title, encoding)


def _load_pdf(path: Path) -> list[Document]:
    text = _pdf_text(path)
    if not text.strip():
        raise _Skip("no extractable text in the PDF (scanned images?)")
    return [_make(str(path), text, None, path.stem)]


def _pdf_text(path: Path) -> str:
    """Text of every page of a PDF, pages separated by blank lines; ``_Skip`` when it cannot be parsed."""
    from pypdf import PdfReader

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Skip(f"cannot read ({exc.strerror or exc})") from exc
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except Exception as exc:  # pypdf raises many kinds of errors on broken files
        raise _Skip(f"cannot parse PDF ({type(exc).__name__}: {exc})") from exc
    text = "\n\n".join(page for page in pages if page)
    return text.replace("\r\n", "\n").replace("\r", "\n")


_LOADERS: dict[str, Callable[[Path], list[Document]]] = {
    ".txt": _load_plain,
    ".md": _load_plain,
    ".html": _load_html,
    ".htm": _load_html,
    ".jsonl": _load_jsonl,
    ".pdf": _load_pdf,
}
