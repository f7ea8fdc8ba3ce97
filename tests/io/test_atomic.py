"""Tests of :mod:`proformer.io.atomic`."""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import matplotlib
import pytest
from helpers import SEQUENCE, no_temporaries, one_line_error

from proformer.cli import main

matplotlib.use("Agg")


ROWS = 3


TABLE_HEADER = "sequence\texpr"


@pytest.fixture
def sequences(tmp_path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text(f"{SEQUENCE}\n" * ROWS)
    return path


def predict(tiny_run, sequences, out) -> int:
    return main(["predict", "--model", str(tiny_run), "--input", str(sequences), "--out", str(out), "--no-progress"])


def is_table(text: str) -> bool:
    header, *rows = text.splitlines() or [""]
    return header == TABLE_HEADER and len(rows) == ROWS and all(row.startswith(SEQUENCE + "\t") for row in rows)


class Reader(threading.Thread):
    """Reads a named pipe to its end, as a process waiting on ``cat PIPE`` would."""

    def __init__(self, pipe: Path):
        super().__init__(daemon=True)
        self.pipe, self.data = pipe, None
        self.start()

    def run(self):
        with open(self.pipe, "rb") as handle:
            self.data = handle.read()

    def finish(self, timeout: float = 60) -> bytes | None:
        self.join(timeout)
        if self.is_alive():  # nobody opened the pipe for writing: let the reader go
            try:
                os.close(os.open(self.pipe, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass  # the pipe is gone (replaced by a file): the thread is a daemon
            self.join(5)
        return self.data


def make_device(path: Path, minor: int) -> Path:
    """A character device with the numbers of /dev/null (1, 3) or /dev/full (1, 7)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("making a device node needs root (CAP_MKNOD)")
    try:
        os.close(os.open(path, os.O_WRONLY))
    except OSError as error:
        pytest.skip(f"device nodes cannot be opened here (a nodev file system?): {error}")
    return path


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_atomic_write_keeps_the_target_on_failure_and_interrupt(tmp_path):
    from proformer.io.atomic import atomic_path, atomic_write

    target = tmp_path / "out.txt"
    target.write_text("precious\n")
    for error in (ValueError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)), atomic_write(target) as handle:
            handle.write("half")
            raise error
        assert target.read_text() == "precious\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary left
    with atomic_write(target, "wb") as handle:
        handle.write(b"new\n")
    assert target.read_bytes() == b"new\n"
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "m.onnx", suffix=".onnx") as temporary:
        assert temporary.parent == tmp_path and temporary.name.endswith(".onnx")
        temporary.write_text("partial")
        raise RuntimeError("exporter failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with atomic_path(tmp_path / "m.onnx") as temporary:
        temporary.write_text("model")
    assert (tmp_path / "m.onnx").read_text() == "model"


def test_predict_into_a_named_pipe_reaches_its_reader_and_the_pipe_stays(tiny_run, sequences, tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    reader = Reader(pipe)
    assert predict(tiny_run, sequences, pipe) == 0
    data = reader.finish()
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode), "the named pipe was replaced by a file"
    assert data is not None and is_table(data.decode())


def test_predict_into_a_character_device_keeps_the_device(tiny_run, sequences, tmp_path):
    device = make_device(tmp_path / "null", 3)
    assert predict(tiny_run, sequences, device) == 0
    assert stat.S_ISCHR(os.lstat(device).st_mode), "the device node was replaced by a file"
    assert os.lstat(device).st_rdev == os.makedev(1, 3)
    no_temporaries(tmp_path)


def test_a_full_device_is_one_line_naming_it_and_stays_a_device(tiny_run, sequences, tmp_path, capsys):
    device = make_device(tmp_path / "full", 7)  # every write: ENOSPC
    assert predict(tiny_run, sequences, device) == 1
    line = one_line_error(capsys.readouterr().err)
    assert str(device) in line and "no space left" in line, line
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_predict_and_design_through_a_symlink_write_its_target_and_keep_the_link(tiny_run, sequences, tmp_path):
    (tmp_path / "results").mkdir()
    target = tmp_path / "results" / "predictions.tsv"
    target.write_text("an older table\n")
    link = tmp_path / "link.tsv"
    link.symlink_to(Path("results") / "predictions.tsv")
    assert predict(tiny_run, sequences, link) == 0
    assert link.is_symlink() and os.readlink(link) == str(Path("results") / "predictions.tsv")
    assert is_table(target.read_text())
    no_temporaries(tmp_path / "results")
    no_temporaries(tmp_path)

    designs = tmp_path / "results" / "designs.tsv"
    designs.write_text("older designs\n")
    design_link = tmp_path / "designs.tsv"
    design_link.symlink_to(designs)
    assert main(["design", "--model", str(tiny_run), "--input", str(sequences), "--target", "high", "--max-edits", "1",
                 "--out", str(design_link), "--no-progress"]) == 0
    assert design_link.is_symlink()
    assert designs.read_text().startswith("id\tstep\tedit\tprediction")


def test_a_symlink_to_standard_output_or_to_a_pipe_gets_the_bytes(tiny_run, sequences, tmp_path, capsys):
    stdout_link = tmp_path / "stdout.tsv"
    stdout_link.symlink_to("/dev/stdout")
    assert predict(tiny_run, sequences, stdout_link) == 0
    captured = capsys.readouterr()
    assert is_table(captured.out), captured  # the table, and nothing else, on standard output
    assert stdout_link.is_symlink() and os.readlink(stdout_link) == "/dev/stdout"

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    pipe_link = tmp_path / "pipe.tsv"
    pipe_link.symlink_to(pipe)
    reader = Reader(pipe)
    assert predict(tiny_run, sequences, pipe_link) == 0
    data = reader.finish()
    assert pipe_link.is_symlink() and stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert data is not None and is_table(data.decode())


def test_a_directory_where_a_file_belongs_is_refused_naming_the_flag(tiny_run, sequences, tmp_path, capsys):
    from proformer.interpret.design import write_designs

    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "folder-link").symlink_to(folder)
    for out in (folder, tmp_path / "folder-link"):
        assert predict(tiny_run, sequences, out) == 2
        line = one_line_error(capsys.readouterr().err)
        assert str(out) in line and "--out" in line, line
    # The writers themselves refuse it the same way (not only the commands' early checks).
    with pytest.raises(IsADirectoryError, match="--out"):
        write_designs([], folder)
    assert list(folder.iterdir()) == []


def test_a_symlink_loop_a_link_to_nothing_or_to_the_input_is_one_line(tiny_run, sequences, tmp_path, capsys):
    loop = tmp_path / "loop.tsv"
    loop.symlink_to("loop.tsv")
    dangling = tmp_path / "dangling.tsv"
    dangling.symlink_to("missing/predictions.tsv")
    for link, words in ((loop, "loop"), (dangling, "does not exist")):
        assert predict(tiny_run, sequences, link) == 2
        line = one_line_error(capsys.readouterr().err)
        assert str(link) in line and words in line and "not found" not in line, line
        assert link.is_symlink(), "the link was replaced"
    assert not (tmp_path / "missing").exists()
    # Still refused: a link to the input file (writing through it would destroy the input).
    through = tmp_path / "through.txt"
    through.symlink_to(sequences)
    before = sequences.read_text()
    assert predict(tiny_run, sequences, through) == 2
    assert "is the input file" in one_line_error(capsys.readouterr().err)
    assert sequences.read_text() == before and through.is_symlink()


def test_a_full_disk_during_predict_names_the_output_and_keeps_the_old_file(tiny_run, sequences, tmp_path, capsys,
                                                                            monkeypatch):
    out = tmp_path / "predictions.tsv"
    out.write_text("the previous table\n")
    monkeypatch.setattr(os, "fsync", _disk_full)
    assert predict(tiny_run, sequences, out) == 1
    line = one_line_error(capsys.readouterr().err)
    assert f"{out}: no space left on the device" in line, line
    assert "bytes written" in line and f"free in {tmp_path}" in line, line
    assert out.read_text() == "the previous table\n"
    no_temporaries(tmp_path)


def test_a_short_write_of_numpy_names_the_file_and_the_sizes(tmp_path):
    from proformer.io.atomic import atomic_path

    out = tmp_path / "arrays.npy"
    with pytest.raises(OSError) as caught, atomic_path(out, suffix=".npy"):
        raise OSError("2828544 requested and 2097152 written")  # ndarray.tofile on a full disk
    error = caught.value
    assert error.filename == str(out)
    assert "2,097,152 of 2,828,544 bytes written" in error.strerror and "free in" in error.strerror
    assert list(tmp_path.iterdir()) == []
