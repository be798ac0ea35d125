"""A user error is ONE clear line on stderr and exit status 2, before any work; a bug keeps its traceback."""

import pytest

from pmd.cli import main


@pytest.fixture()
def files(tmp_path):
    d = {"dir": tmp_path / "cfgdir", "file": tmp_path / "plain.txt", "out": tmp_path / "out"}
    d["dir"].mkdir()
    d["file"].write_text("x\n")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "nul.yaml").write_bytes(b"a: 1\x00\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "typo.yaml").write_text("download:\n  retires: 3\n")
    (tmp_path / "parts.yaml").write_text("partitions: 0\n")
    import gzip

    page = gzip.compress(b"<html><body><p>" + b"words here " * 400 + b"</p></body></html>")
    (tmp_path / "cut.html.gz").write_bytes(page[: len(page) // 2])
    (tmp_path / "page.html").write_bytes(b"<html><body><p>x</p></body></html>")
    return tmp_path, d


CASES = [
    (["build", "--out", "{out}", "--set", "k=[1"], r"--set 'k=\[1': '\[1' is not a YAML value"),
    (["build", "--out", "{out}", "--set", "novalue"], r"--set 'novalue': expected KEY=VALUE"),
    (["build", "--out", "{out}", "--set", "a..b=1"], r"expected KEY=VALUE"),
    (["build", "--out", "{out}", "--config", "{dir}"], r"is a directory; expected a YAML file"),
    (["build", "--out", "{out}", "--config", "{tmp}/binary.yaml"], r"binary.yaml: not a YAML text file"),
    (["build", "--out", "{out}", "--config", "{tmp}/nul.yaml"], r"nul.yaml: not valid YAML: .* at character"),
    (["build", "--out", "{out}", "--config", "{tmp}/list.yaml"], r"top level must be a mapping of keys, got a list"),
    (["build", "--out", "{out}", "--config", "{tmp}/typo.yaml"], r"unknown config key 'download.retires'"),
    (["build", "--out", "{out}", "--config", "pmd_sample", "--set", "shard.samples_per_shard=0"],
     r"shard.samples_per_shard: must be >= 1, got 0"),
    (["build", "--out", "{out}", "--config", "pmd_sample", "--set", "download.timeout=0"], r"^download: .*timeout"),
    (["build", "--out", "{file}"], r"--out .*plain.txt is a file; expected a directory"),
    (["build", "--out", "/proc/pmd-test-out"], r"/proc is not writable"),
    (["interleaved", "--out", "{out}", "--set", "partitions=0"], r"partitions: must be >= 1, got 0"),
    (["interleaved", "--out", "{out}", "--config", "{tmp}/parts.yaml"], r"partitions: must be >= 1, got 0"),
    (["interleaved", "--out", "{out}", "--set", "download.retires=2"], r"unknown config key 'download.retires'"),
    (["interleaved", "--out", "{out}", "--set", "dedup.minhash_threshold=2"], r"dedup.minhash_threshold: must be <= 1"),
    (["interleaved", "--out", "{file}"], r"is a file; expected a directory"),
    (["interleaved", "--out", "{out}", "--config", "{dir}"], r"is a directory; expected a YAML file"),
    (["export", "pmd", "{dir}", "--out", "{dir}"], r"also an input"),
    (["export", "pmd", "{dir}", "--out", "{tmp}"], r"is a directory; expected a file"),
    (["sources", "parse", "coco", "{file}", "--out", "{file}"], r"also an input"),
    (["train", "--validate", "{dir}", "--out", "{dir}"], r"also an input"),
    (["train", "--validate", "{dir}", "--out", "{out}", "--set", "k=[1"], r"is not a YAML value"),
    (["train", "--config", "{tmp}/binary.yaml", "--validate", "{dir}", "--out", "{out}"], r"not a YAML text file"),
    (["stats", "{dir}", "--plots", "{file}"], r"--plots .* is a file; expected a directory"),
    (["score", "{dir}", "--checkpoint", "{file}", "--out", "{file}"], r"also an input"),
    (["sample", "--out", "{file}"], r"is a file; expected a directory"),
    (["demo", "--out", "{file}"], r"is a file; expected a directory"),
    (["interleaved", "extract", "{tmp}/cut.html.gz", "--url", "http://h.org/"], r"cut.html.gz: damaged gzip data"),
    (["interleaved", "extract", "{tmp}/page.html", "--url", "http://h.org/", "--charset", "no-such-cs"],
     r"--charset 'no-such-cs': not a charset"),
]


@pytest.mark.parametrize("argv, match", CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_user_errors_are_one_line_exit_2(files, capsys, argv, match):
    import re

    tmp, d = files
    argv = [a.format(tmp=tmp, **d) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1, err
    message = errors[0].split(": ", 1)[1]  # after "HH:MM:SS ERROR   pmd: "
    assert re.search(match, message), message
    assert not d["out"].exists(), "nothing is written before the inputs are checked"


def test_os_error_about_a_user_path_is_one_line_but_a_bug_keeps_its_traceback(monkeypatch, capsys, tmp_path):
    import pmd.commands.export as export

    def missing(args):
        raise FileNotFoundError(2, "No such file or directory", str(tmp_path / "gone.parquet"))

    monkeypatch.setattr(export, "run", missing)
    assert main(["export", "pmd", str(tmp_path), "--out", str(tmp_path / "x.parquet")]) == 2
    err = capsys.readouterr().err
    assert "gone.parquet: No such file or directory" in err and "Traceback" not in err

    def bug(args):
        raise KeyError("a bug")

    monkeypatch.setattr(export, "run", bug)
    with pytest.raises(KeyError):
        main(["export", "pmd", str(tmp_path), "--out", str(tmp_path / "x.parquet")])
    monkeypatch.setattr(export, "run", lambda args: (_ for _ in ()).throw(OSError("no path involved")))
    with pytest.raises(OSError):
        main(["export", "pmd", str(tmp_path), "--out", str(tmp_path / "x.parquet")])


def test_an_interleaved_build_that_keeps_nothing_exits_non_zero(monkeypatch, tmp_path, capsys):
    import pmd.interleaved.run as run
    from pmd.counters import CounterBook
    from pmd.shard.manifest import write_manifest

    warc = tmp_path / "empty.warc"
    warc.write_bytes(b"")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"inputs: [{warc}]\n")
    monkeypatch.setattr(run, "build", lambda cfg, out, **kw: write_manifest(out, "interleaved-docs", [], {}, CounterBook()))
    assert main(["interleaved", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 1
    assert "kept no document" in capsys.readouterr().err
