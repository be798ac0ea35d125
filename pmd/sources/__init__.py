"""PMD sources: one module per upstream dataset, each a ``Source`` (see ``base``) in ``registry.SOURCES``."""
