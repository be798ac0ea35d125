"""``pmd.outputs.check_out``: the up-front refusal of an --out that cannot work."""

import os

import pytest

from pmd.errors import UserError
from pmd.outputs import check_out


def test_accepts_new_and_existing_outputs(tmp_path):
    assert check_out(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_out(tmp_path) == tmp_path  # an existing build directory is reused (resume)
    f = tmp_path / "a.parquet"
    assert check_out(f, want="file") == f
    f.write_bytes(b"x")
    assert check_out(f, want="file") == f  # replaced
    assert not (tmp_path / "new").exists(), "the check creates nothing"
    assert [p.name for p in tmp_path.iterdir()] == ["a.parquet"], "the write probe leaves nothing behind"


def test_file_where_a_directory_is_meant_and_the_reverse(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match=r"is a file; expected a directory"):
        check_out(f, want="dir")
    with pytest.raises(UserError, match=r"is a directory; expected a file"):
        check_out(tmp_path, want="file")
    with pytest.raises(UserError, match=r"is a file, so nothing can be created under it"):
        check_out(f / "sub", want="dir")


def test_the_input_itself_is_refused(tmp_path):
    src = tmp_path / "in.tsv"
    src.write_text("a\tb\n")
    with pytest.raises(UserError, match="also an input"):
        check_out(src, inputs=[tmp_path / "other", src], want="file")
    link = tmp_path / "link.tsv"
    link.symlink_to(src)
    with pytest.raises(UserError, match="also an input"):
        check_out(link, inputs=[src], want="file")
    with pytest.raises(UserError, match="also an input"):
        check_out(tmp_path / "." , inputs=[tmp_path], want="dir")
    assert src.read_text() == "a\tb\n"


def test_read_only_places_are_refused(tmp_path):
    # procfs refuses new files for every user, root included
    with pytest.raises(UserError, match="not writable"):
        check_out("/proc/pmd-test-out", want="dir")
    with pytest.raises(UserError, match="not writable"):
        check_out("/proc/pmd-test-out.parquet", want="file")
    if os.geteuid() != 0:  # root writes through a 0o555 mode
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(UserError, match="not writable"):
                check_out(ro / "out")
        finally:
            ro.chmod(0o755)
