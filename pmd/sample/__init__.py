"""The embedded sample: every PMD source's raw metadata in its real format, rendered images with true
captions, a small WARC crawl, and a loopback image server with injectable faults.

``generate_sample(out_dir)`` writes it (see ``pmd.sample.generate`` for ``sample.json``);
``ImageServer(out_dir, port=...)`` serves its images at the ``base_url`` it was generated for.
"""

from pmd.sample.generate import ensure_sample, generate_sample, load_sample
from pmd.sample.server import FaultConfig, ImageServer, free_port

__all__ = ["ensure_sample", "generate_sample", "load_sample", "ImageServer", "FaultConfig", "free_port"]
