"""Text utilities shared by the pipelines: normalisers, language ID (fastText lid.176), caption filters."""
