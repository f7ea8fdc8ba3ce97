"""The output rule (proformer.io.atomic): outputs never destroy what is there.

A regular file or a new path is written beside itself and renamed; a symbolic link's target is
written (the link stays); a named pipe, a character device or ``-`` is written straight through;
a directory, a link loop or a link to nothing is refused in one line. A full disk is one error
naming the output. A folder output (ism, attribute, evaluate --out-dir) holds only the current
run's files, and a failure leaves the earlier folder as it was.

Every command runs in-process (proformer.cli.main) on the tiny run of tests/helpers.py.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import matplotlib
import pytest
from helpers import write_tiny_run

matplotlib.use("Agg")
from matplotlib.figure import Figure

from proformer.cli import main

SEQUENCE = "ACGTACGTACGTACGTACGT"  # 20 nt: 17 seen after the tiny run's flanks of 2 + 1
ROWS = 3
TABLE_HEADER = "sequence\texpr"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return write_tiny_run(tmp_path_factory.mktemp("run"))


@pytest.fixture
def sequences(tmp_path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text(f"{SEQUENCE}\n" * ROWS)
    return path


def predict(run_dir, sequences, out) -> int:
    return main(["predict", "--model", str(run_dir), "--input", str(sequences), "--out", str(out), "--no-progress"])


def is_table(text: str) -> bool:
    header, *rows = text.splitlines() or [""]
    return header == TABLE_HEADER and len(rows) == ROWS and all(row.startswith(SEQUENCE + "\t") for row in rows)


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def no_temporaries(folder: Path) -> None:
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert not hidden, hidden


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


# 1. Files: the one output rule ----------------------------------------------------------------

def test_predict_into_a_named_pipe_reaches_its_reader_and_the_pipe_stays(run_dir, sequences, tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    reader = Reader(pipe)
    assert predict(run_dir, sequences, pipe) == 0
    data = reader.finish()
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode), "the named pipe was replaced by a file"
    assert data is not None and is_table(data.decode())


def test_predict_into_a_character_device_keeps_the_device(run_dir, sequences, tmp_path):
    device = make_device(tmp_path / "null", 3)
    assert predict(run_dir, sequences, device) == 0
    assert stat.S_ISCHR(os.lstat(device).st_mode), "the device node was replaced by a file"
    assert os.lstat(device).st_rdev == os.makedev(1, 3)
    no_temporaries(tmp_path)


def test_a_full_device_is_one_line_naming_it_and_stays_a_device(run_dir, sequences, tmp_path, capsys):
    device = make_device(tmp_path / "full", 7)  # every write: ENOSPC
    assert predict(run_dir, sequences, device) == 1
    line = one_line(capsys.readouterr().err)
    assert str(device) in line and "no space left" in line, line
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_predict_and_design_through_a_symlink_write_its_target_and_keep_the_link(run_dir, sequences, tmp_path):
    (tmp_path / "results").mkdir()
    target = tmp_path / "results" / "predictions.tsv"
    target.write_text("an older table\n")
    link = tmp_path / "link.tsv"
    link.symlink_to(Path("results") / "predictions.tsv")
    assert predict(run_dir, sequences, link) == 0
    assert link.is_symlink() and os.readlink(link) == str(Path("results") / "predictions.tsv")
    assert is_table(target.read_text())
    no_temporaries(tmp_path / "results")
    no_temporaries(tmp_path)

    designs = tmp_path / "results" / "designs.tsv"
    designs.write_text("older designs\n")
    design_link = tmp_path / "designs.tsv"
    design_link.symlink_to(designs)
    assert main(["design", "--model", str(run_dir), "--input", str(sequences), "--target", "high", "--max-edits", "1",
                 "--out", str(design_link), "--no-progress"]) == 0
    assert design_link.is_symlink()
    assert designs.read_text().startswith("id\tstep\tedit\tprediction")


def test_a_symlink_to_standard_output_or_to_a_pipe_gets_the_bytes(run_dir, sequences, tmp_path, capsys):
    stdout_link = tmp_path / "stdout.tsv"
    stdout_link.symlink_to("/dev/stdout")
    assert predict(run_dir, sequences, stdout_link) == 0
    captured = capsys.readouterr()
    assert is_table(captured.out), captured  # the table, and nothing else, on standard output
    assert stdout_link.is_symlink() and os.readlink(stdout_link) == "/dev/stdout"

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    pipe_link = tmp_path / "pipe.tsv"
    pipe_link.symlink_to(pipe)
    reader = Reader(pipe)
    assert predict(run_dir, sequences, pipe_link) == 0
    data = reader.finish()
    assert pipe_link.is_symlink() and stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert data is not None and is_table(data.decode())


def test_a_directory_where_a_file_belongs_is_refused_naming_the_flag(run_dir, sequences, tmp_path, capsys):
    from proformer.interpret.design import write_designs

    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "folder-link").symlink_to(folder)
    for out in (folder, tmp_path / "folder-link"):
        assert predict(run_dir, sequences, out) == 2
        line = one_line(capsys.readouterr().err)
        assert str(out) in line and "--out" in line, line
    # The writers themselves refuse it the same way (not only the commands' early checks).
    with pytest.raises(IsADirectoryError, match="--out"):
        write_designs([], folder)
    assert list(folder.iterdir()) == []


def test_a_symlink_loop_a_link_to_nothing_or_to_the_input_is_one_line(run_dir, sequences, tmp_path, capsys):
    loop = tmp_path / "loop.tsv"
    loop.symlink_to("loop.tsv")
    dangling = tmp_path / "dangling.tsv"
    dangling.symlink_to("missing/predictions.tsv")
    for link, words in ((loop, "loop"), (dangling, "does not exist")):
        assert predict(run_dir, sequences, link) == 2
        line = one_line(capsys.readouterr().err)
        assert str(link) in line and words in line and "not found" not in line, line
        assert link.is_symlink(), "the link was replaced"
    assert not (tmp_path / "missing").exists()
    # Still refused: a link to the input file (writing through it would destroy the input).
    through = tmp_path / "through.txt"
    through.symlink_to(sequences)
    before = sequences.read_text()
    assert predict(run_dir, sequences, through) == 2
    assert "is the input file" in one_line(capsys.readouterr().err)
    assert sequences.read_text() == before and through.is_symlink()


# 2. A full disk names the file ------------------------------------------------------------------

def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_predict_names_the_output_and_keeps_the_old_file(run_dir, sequences, tmp_path, capsys,
                                                                            monkeypatch):
    out = tmp_path / "predictions.tsv"
    out.write_text("the previous table\n")
    monkeypatch.setattr(os, "fsync", _disk_full)
    assert predict(run_dir, sequences, out) == 1
    line = one_line(capsys.readouterr().err)
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


# 3. Folder outputs hold only this run's files ---------------------------------------------------

def _fasta(path: Path, names: list[str]) -> Path:
    bases = "ACGT"
    records = [f">{name}\n" + "".join(bases[(i * 7 + j * (i + 1)) % 4] for j in range(20)) + "\n"
               for i, name in enumerate(names)]
    path.write_text("".join(records))
    return path


def _ism(run_dir, fasta, out, top) -> int:
    return main(["ism", "--model", str(run_dir), "--input", str(fasta), "--out", str(out), "--top", str(top),
                 "--no-progress"])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ism_into_an_earlier_folder_holds_only_this_runs_logos(run_dir, tmp_path):
    out = tmp_path / "ism"
    first = _fasta(tmp_path / "first.fa", [f"old{i}" for i in range(5)])
    assert _ism(run_dir, first, out, 3) == 0
    assert len(list((out / "logos").glob("*.png"))) == 3
    (out / "notes.txt").write_text("my notes\n")  # not ism's: it stays
    second = _fasta(tmp_path / "second.fa", [f"new{i}" for i in range(5)])
    assert _ism(run_dir, second, out, 1) == 0
    logos = sorted(p.name for p in (out / "logos").iterdir())
    assert len(logos) == 1 and logos[0].startswith("001_new"), logos
    assert sorted(p.name for p in out.iterdir()) == ["ism.npz", "logos", "notes.txt"]
    assert (out / "notes.txt").read_text() == "my notes\n"
    import numpy as np

    assert list(np.load(out / "ism.npz")["ids"]) == [f"new{i}" for i in range(5)]
    assert _ism(run_dir, second, out, 0) == 0  # no logos asked for: none left
    assert sorted(p.name for p in out.iterdir()) == ["ism.npz", "notes.txt"]
    no_temporaries(tmp_path)


def _half_written_savefig(self, fname, *args, **kwargs):
    with open(fname, "wb") as handle:
        handle.write(b"\x89PNG half")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_ism_leaves_the_earlier_folder_and_names_the_file(run_dir, tmp_path, capsys,
                                                                            monkeypatch):
    out = tmp_path / "ism"
    assert _ism(run_dir, _fasta(tmp_path / "first.fa", [f"old{i}" for i in range(5)]), out, 3) == 0
    before = _snapshot(out)
    capsys.readouterr()
    monkeypatch.setattr(Figure, "savefig", _half_written_savefig)  # ism.npz is written, then the first logo fails
    assert _ism(run_dir, _fasta(tmp_path / "second.fa", [f"new{i}" for i in range(5)]), out, 3) == 1
    line = one_line(capsys.readouterr().err)
    assert f"{out / 'logos' / '001_new'}" in line and "no space left" in line, line
    assert ".tmp" not in line and "staging" not in line, line
    assert _snapshot(out) == before, "the earlier, complete output was changed"
    no_temporaries(out)
    no_temporaries(tmp_path)


def test_a_failed_ism_into_a_new_folder_leaves_nothing(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "ism"
    monkeypatch.setattr(Figure, "savefig", _half_written_savefig)
    assert _ism(run_dir, _fasta(tmp_path / "in.fa", ["a", "b"]), out, 1) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fa"]


def test_attribute_into_an_earlier_folder_drops_the_earlier_modisco_inputs(run_dir, tmp_path):
    out = tmp_path / "attributions"
    fasta = _fasta(tmp_path / "in.fa", ["a", "b", "c"])
    command = ["attribute", "--model", str(run_dir), "--input", str(fasta), "--out", str(out), "--method", "saliency",
               "--no-progress"]
    assert main(command + ["--hypothetical"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["attributions.npz", "modisco_hyp.npz", "modisco_ohe.npz"]
    (out / "modisco.h5").write_bytes(b"from an earlier TF-MoDISco run")
    (out / "README").write_text("mine\n")
    assert main(command) == 0  # no hypothetical contributions: no TF-MoDISco inputs belong to this run
    assert sorted(p.name for p in out.iterdir()) == ["README", "attributions.npz"]


def test_evaluate_out_dir_holds_only_this_runs_scatters(run_dir, tmp_path):
    table = tmp_path / "labelled.tsv"
    table.write_text("sequence\texpr\n" + "".join(f"{SEQUENCE[i:] + SEQUENCE[:i]}\t{i / 3:.3f}\n" for i in range(12)))
    out = tmp_path / "report"
    out.mkdir()
    (out / "scatter_other_target.png").write_bytes(b"an earlier run's plot")
    (out / "metrics.json").write_text("{}\n")
    (out / "notes.md").write_text("mine\n")
    assert main(["evaluate", "--model", str(run_dir), "--data", str(table), "--seq-col", "sequence", "--out-dir",
                 str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "notes.md", "scatter_expr.png"]
    assert (out / "scatter_expr.png").read_bytes().startswith(b"\x89PNG")
    assert '"expr"' in (out / "metrics.json").read_text()
