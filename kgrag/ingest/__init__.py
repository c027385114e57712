"""Ingest stage: load files into documents, then cut documents into sentence-window passages."""

from kgrag.ingest.chunker import Chunker, load_sentencizer, paragraph_spans
from kgrag.ingest.loaders import document_id, html_to_text, load_documents

__all__ = ["Chunker", "document_id", "html_to_text", "load_documents", "load_sentencizer", "paragraph_spans"]
