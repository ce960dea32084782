"""Measuring answers: SQuAD-style scores, calibration, and `article-qa eval` over the real answering path."""
