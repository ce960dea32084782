"""Turning an article into a searchable index: article → passages → embeddings + BM25 → FAISS store."""
