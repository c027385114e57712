"""Evaluation: benchmark harness (``kgrag eval``), triple/entity metrics, verbaliser BLEU/ROUGE-L."""

from kgrag.evaluation.metrics import PRF, Counts, micro, prf

__all__ = ["PRF", "Counts", "micro", "prf"]
