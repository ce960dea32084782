"""Batch files: questions read line by line, answered in order, written back safely (`article-qa batch`)."""
