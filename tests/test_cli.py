import subprocess
import sys

import pytest

from pmd.cli import build_parser, main

EXPECTED = {"sample", "sources", "build", "retry-failed", "export", "interleaved", "stats", "train", "score", "demo"}


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert name in out


def test_each_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == EXPECTED
    for name, p in sub.choices.items():
        assert p.description, f"{name} has no description"


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "pmd", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("pmd ")
