"""pmd: data engineering for multimodal pretraining corpora (PMD, M3W-style documents, FLAVA)."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
