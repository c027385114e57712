"""Ingest stage: loaders on real files in tmp_path, chunker with the real spaCy model."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from pathlib import Path

import pytest

from kgrag.errors import KgragError
from kgrag.ingest import Chunker, load_documents, load_sentencizer
from kgrag.records import Document

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CORPUS = DATA / "corpus" / "physics_history"
PIERRE = CORPUS / "pierre_curie.txt"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def text_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF (Helvetica, one text line per entry) that pypdf can extract text from."""
    n = len(pages)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    font = 3 + 2 * n
    for i, lines in enumerate(pages):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        ops = " ".join(f"({line}) Tj 0 -20 Td" for line in lines)
        stream = f"BT /F1 12 Tf 72 720 Td {ops} ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def skipped(caplog: pytest.LogCaptureFixture, path: Path) -> list[str]:
    """Warning messages that name ``path`` as skipped."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().startswith(f"skipping {path}")
    ]


# ---------------------------------------------------------------- loaders


def test_txt_and_md(tmp_path: Path) -> None:
    txt = write(tmp_path / "a.txt", "\n\n  Marie Curie  \n\nShe was a physicist.\n")
    md = write(tmp_path / "b.md", "# Radium\n\nRadium is an element.")
    docs = load_documents([txt, md])
    assert [d.source for d in docs] == [str(txt), str(md)]
    assert docs[0].title == "Marie Curie"
    assert docs[0].text == "Marie Curie  \n\nShe was a physicist."
    assert docs[0].id == hashlib.sha256(docs[0].text.encode()).hexdigest()[:16]
    assert docs[1].title == "# Radium"
    assert not any(d.derived for d in docs)


def test_title_trimmed_to_120_chars(tmp_path: Path) -> None:
    doc = load_documents([write(tmp_path / "long.txt", "x" * 300 + "\nmore")])[0]
    assert doc.title == "x" * 120


def test_folder_walk_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "Bee text.")
    write(tmp_path / "a" / "z.md", "Zed text.")
    write(tmp_path / "a" / "b" / "y.txt", "Why text.")
    write(tmp_path / ".hidden.txt", "Hidden text.")
    write(tmp_path / ".git" / "notes.txt", "Git text.")
    docs = load_documents([tmp_path])
    assert [Path(d.source).relative_to(tmp_path).as_posix() for d in docs] == ["a/b/y.txt", "a/z.md", "b.txt"]


def test_html_strips_tags_scripts_and_keeps_paragraphs(tmp_path: Path) -> None:
    html = """<html><head><title>T</title><style>p {color: red}</style></head>
    <body><h1>Polonium</h1><script>var x = 1;</script>
    <p>Polonium was   discovered
       in 1898 by <b>Marie</b> &amp; Pierre.</p><!-- a comment -->
    <div>It is rare.<br>Very rare.</div></body></html>"""
    doc = load_documents([write(tmp_path / "po.html", html)])[0]
    assert doc.text == "Polonium\n\nPolonium was discovered in 1898 by Marie & Pierre.\n\nIt is rare.\nVery rare."
    assert doc.title == "Polonium"


def test_htm_extension(tmp_path: Path) -> None:
    doc = load_documents([write(tmp_path / "x.HTM", "<p>Upper case suffix.</p>")])[0]
    assert doc.text == "Upper case suffix."


def test_jsonl_one_document_per_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [
        json.dumps({"id": "r1", "title": "Fermi", "text": "Enrico Fermi built a reactor."}),
        json.dumps({"id": 42, "text": "Seaborg found plutonium."}),
        "",
        json.dumps({"text": "Meitner explained fission."}),
        "{not json",
        json.dumps({"title": "no text field"}),
        json.dumps({"text": "   "}),
    ]
    path = write(tmp_path / "recs.jsonl", "\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        docs = load_documents([path])
    assert [d.source for d in docs] == [f"{path}#L1", f"{path}#L2", f"{path}#L4"]
    assert [d.title for d in docs] == ["Fermi", "42", "recs.jsonl:4"]
    assert docs[2].text == "Meitner explained fission."
    for line in (5, 6, 7):
        assert skipped(caplog, Path(f"{path}#L{line}")), line


def test_pdf_pages_joined_with_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "paper.pdf"
    path.write_bytes(text_pdf([["Rutherford Scattering", "Alpha particles hit gold foil."], ["Page two text."]]))
    doc = load_documents([path])[0]
    assert doc.title == "Rutherford Scattering"
    assert "Alpha particles hit gold foil." in doc.text
    first, second = doc.text.split("\n\n")
    assert "Rutherford" in first and second == "Page two text."


def test_corrupt_pdf_is_skipped_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    good = write(tmp_path / "ok.txt", "Readable text.")
    with caplog.at_level(logging.WARNING):
        docs = load_documents([bad, good])
    assert [d.source for d in docs] == [str(good)]
    assert skipped(caplog, bad)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\t\n ", "empty"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("noise.txt", bytes(range(1, 256)) * 3, "not UTF-8 (bad byte at offset 127) and no other text encoding fits"),
        ("data.csv", b"a,b\n1,2\n", "unsupported"),
        ("noext", b"some text", "unsupported"),
    ],
)
def test_bad_files_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, content: bytes, reason: str
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    good = write(tmp_path / "zz_good.txt", "Good text.")
    with caplog.at_level(logging.WARNING):
        docs = load_documents([tmp_path])
    assert [d.source for d in docs] == [str(good)]
    messages = skipped(caplog, bad)
    assert len(messages) == 1 and reason in messages[0]


def test_unreadable_file_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = write(tmp_path / "secret.txt", "Hidden away.")
    write(tmp_path / "ok.txt", "Fine.")
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == bad:  # a permission error, even when the tests run as root
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with caplog.at_level(logging.WARNING):
        docs = load_documents([tmp_path])
    assert len(docs) == 1
    assert "cannot read (Permission denied)" in skipped(caplog, bad)[0]


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffBohr model.\r\nSecond line.".encode())
    assert load_documents([path])[0].text == "Bohr model.\nSecond line."


def test_utf8_reports_utf8(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "utf8.txt", "Le café – c’est naïve.")
    with caplog.at_level(logging.INFO):
        [doc] = load_documents([path])
    assert doc.text == "Le café – c’est naïve." and doc.encoding == "utf-8"
    assert not [r for r in caplog.records if r.getMessage().startswith("read ")]


def test_cp1252_file_is_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # charset-normalizer alone ranks cp1250 first here, which would read "naïve" as "naďve"
    path = tmp_path / "cp1252.txt"
    path.write_bytes("Le café – c’est naïve.\r\nL’été à Paris coûte 5 €.".encode("cp1252"))
    with caplog.at_level(logging.INFO):
        [doc] = load_documents([path])
    assert doc.text == "Le café – c’est naïve.\nL’été à Paris coûte 5 €."
    assert doc.encoding == "cp1252"
    assert doc.id == hashlib.sha256(doc.text.encode()).hexdigest()[:16]
    assert f"read {path} as cp1252" in [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


@pytest.mark.parametrize(
    "text",
    [
        "Zoë Brontë lives in São Paulo. Müller paid £5 for the smørrebrød at the Ærø café.",
        "El señor Muñoz vive en España; ¿dónde está la estación?",  # charset-normalizer alone says cp1257
    ],
)
def test_latin1_file_is_read(tmp_path: Path, text: str) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(text.encode("latin-1"))
    [doc] = load_documents([path])
    assert doc.text == text and doc.encoding == "iso8859-1"


def test_other_encodings_are_read(tmp_path: Path) -> None:
    texts = {
        "cp1250": "Příliš žluťoučký kůň úpěl ďábelské ódy. Marie Curie-Skłodowská byla fyzička.",
        "cp1251": "Мария Склодовская-Кюри родилась в Варшаве. Она изучала физику в Париже.",
        "gb18030": "玛丽·居里出生于华沙。她在巴黎学习物理。",
    }
    for encoding, text in texts.items():
        (tmp_path / f"{encoding}.txt").write_bytes(text.encode(encoding))
    docs = load_documents([tmp_path])
    assert {d.encoding: d.text for d in docs} == texts


def test_encoding_of_html_and_jsonl(tmp_path: Path) -> None:
    html = tmp_path / "page.html"
    html.write_bytes("<html><body><p>Le café – c’est naïve.</p></body></html>".encode("cp1252"))
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_bytes('{"text": "Müller’s café."}\n{"text": "Zoë – naïve."}\n'.encode("cp1252"))
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(text_pdf([["Radium glows."]]))
    docs = load_documents([html, jsonl, pdf])
    assert [(d.text, d.encoding) for d in docs] == [
        ("Le café – c’est naïve.", "cp1252"),
        ("Müller’s café.", "cp1252"),
        ("Zoë – naïve.", "cp1252"),
        ("Radium glows.", "utf-8"),  # a PDF's text is not decoded from bytes
    ]


def test_missing_path_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(KgragError, match=f"no such file or folder: {missing}"):
        load_documents([missing])


def test_nothing_readable_raises(tmp_path: Path) -> None:
    write(tmp_path / "empty.txt", "")
    with pytest.raises(KgragError, match="none of the inputs had readable text"):
        load_documents([tmp_path])


def test_ids_are_stable_and_duplicates_kept_once(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "Same text.")
    b = write(tmp_path / "b.txt", "Same text.\n")
    c = write(tmp_path / "c.txt", "Other text.")
    first = load_documents([a, b, c])
    assert [d.source for d in first] == [str(a), str(c)]
    assert [d.id for d in load_documents([c, a])] == [first[1].id, first[0].id]
    assert all(len(d.id) == 16 for d in first)


# ---------------------------------------------------------------- chunker


def doc(text: str, derived: bool = False) -> Document:
    return Document(
        id=hashlib.sha256(text.encode()).hexdigest()[:16], source="t", title="t", text=text, derived=derived
    )


@pytest.fixture(scope="module")
def pierre() -> Document:
    if not PIERRE.is_file():
        pytest.skip(f"corpus not found at {PIERRE}")
    return load_documents([PIERRE])[0]


def test_offsets_hold_on_the_real_corpus(pierre: Document) -> None:
    passages = Chunker().chunk([pierre], start_id=7)
    assert len(passages) > 10
    assert [p.id for p in passages] == list(range(7, 7 + len(passages)))
    for p in passages:
        assert pierre.text[p.start : p.end] == p.text
        assert p.doc_id == pierre.id and p.text.strip() == p.text


def test_offsets_hold_on_the_whole_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    docs = load_documents([CORPUS])
    by_id = {d.id: d for d in docs}
    passages = Chunker().chunk(docs)
    assert [p.id for p in passages] == list(range(len(passages)))
    assert {p.doc_id for p in passages} == set(by_id)
    assert all(by_id[p.doc_id].text[p.start : p.end] == p.text for p in passages)


def test_overlap_is_shared(pierre: Document) -> None:
    chunker = Chunker(sentences_per_passage=3, overlap=1)
    sentences = chunker.sentences([pierre])[0]
    starts = {s.start: s for s in sentences}
    passages = chunker.chunk([pierre])
    for before, after in itertools.pairwise(passages):
        shared = starts[after.start]  # every passage starts on a sentence ...
        assert shared.end == before.end  # ... and that sentence ends the previous passage
    assert all(p.start in starts for p in passages)


def test_no_overlap_means_disjoint(pierre: Document) -> None:
    passages = Chunker(sentences_per_passage=2, overlap=0).chunk([pierre])
    assert all(a.end < b.start for a, b in itertools.pairwise(passages))


def test_max_chars_respected(pierre: Document) -> None:
    chunker = Chunker(sentences_per_passage=4, overlap=1, max_chars=250)
    sentences = set(chunker.sentences([pierre])[0])
    passages = chunker.chunk([pierre])
    for p in passages:
        assert len(p.text) <= 250 or (p.start, p.end) in sentences  # only a lone long sentence may exceed
    assert any(len(p.text) > 250 for p in passages)  # the corpus has such sentences
    covered = set().union(*(range(p.start, p.end) for p in passages))
    assert all(s.start in covered for s in sentences)  # cutting early loses no sentence


def test_heading_is_its_own_sentence(pierre: Document) -> None:
    texts = [pierre.text[s.start : s.end] for s in Chunker().sentences([pierre])[0]]
    assert "Early life" in texts
    assert not any(t.startswith("Early life") and t != "Early life" for t in texts)


def test_paragraph_breaks_are_sentence_breaks() -> None:
    text = "Discovery of radium\n\nMarie and Pierre Curie found radium in 1898. It glows.\n \nOk\n\nA."
    d = doc(text)
    got = [text[s.start : s.end] for s in Chunker().sentences([d])[0]]
    assert got == ["Discovery of radium", "Marie and Pierre Curie found radium in 1898.", "It glows."]


def test_several_documents_ids_and_derived() -> None:
    docs = [
        doc("One. Two is here. Three is here. Four is here."),
        doc("Five is here.", derived=True),
        doc("  "),
    ]
    passages = Chunker(sentences_per_passage=2, overlap=1).chunk(docs, start_id=100)
    assert [p.id for p in passages] == list(range(100, 100 + len(passages)))
    assert [(p.doc_id, p.text) for p in passages] == [
        (docs[0].id, "One. Two is here."),
        (docs[0].id, "Two is here. Three is here."),
        (docs[0].id, "Three is here. Four is here."),
        (docs[1].id, "Five is here."),
    ]
    assert [p.derived for p in passages] == [False, False, False, True]


def test_paragraph_longer_than_spacy_max_length(monkeypatch: pytest.MonkeyPatch) -> None:
    nlp = load_sentencizer()
    monkeypatch.setattr(nlp, "max_length", 500)  # as if the paragraph were longer than spaCy's 1M default
    text = "The neutron was discovered by James Chadwick in 1932. " * 30
    d = doc(text.strip())
    passages = Chunker(sentences_per_passage=3, overlap=1).chunk([d])
    assert len(passages) == 15
    assert all(d.text[p.start : p.end] == p.text for p in passages)
    assert passages[-1].end == len(d.text)


@pytest.mark.parametrize(("sentences", "overlap"), [(3, 3), (2, 5), (0, 0), (3, -1)])
def test_bad_settings_raise(sentences: int, overlap: int) -> None:
    with pytest.raises(KgragError):
        Chunker(sentences_per_passage=sentences, overlap=overlap)


def test_empty_input() -> None:
    assert Chunker().chunk([]) == []
