"""Build step for the compiled modules; everything else is configured in pyproject.toml.

Both are plain C (no build dependency) and optional: when one does not build, the Python code it
replaces is used, which gives the same output.
- ``pmd.interleaved._walk``: the interleaved extractor's DOM walk, main-content selection and assembly.
- ``pmd.interleaved._textstats``: the filters' word tokeniser, special-character count and n-gram
  repetition ratios.
"""

import sys

from setuptools import Extension, setup

# IEEE double arithmetic exactly as Python's floats (no fused multiply-add contraction)
_ARGS = [] if sys.platform == "win32" else ["-O2", "-ffp-contract=off"]

setup(ext_modules=[
    Extension("pmd.interleaved._walk", ["pmd/interleaved/_walk.c"], optional=True, extra_compile_args=_ARGS),
    Extension("pmd.interleaved._textstats", ["pmd/interleaved/_textstats.c"], optional=True,
              extra_compile_args=_ARGS),
])
