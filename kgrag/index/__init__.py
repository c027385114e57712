"""Embedding and the FAISS passage index."""
