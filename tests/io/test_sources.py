"""Tests of :mod:`proformer.io.sources`."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    dream_text_prepare,
    one_line,
    run_prepare,
    write_prepare,
)

from proformer.cli import main
from proformer.data.prepare import InputError


@pytest.fixture
def loop(tmp_path) -> Path:
    """``ln -s b a; ln -s a b``."""
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    return tmp_path / "a"


@pytest.fixture
def dangling(tmp_path) -> Path:
    os.symlink(tmp_path / "gone.txt", tmp_path / "dangling")
    return tmp_path / "dangling"


def test_a_symbolic_link_loop_as_input_says_so(tiny_run_dir, loop, tmp_path, capsys):
    """Old code: 'input file not found: .../a' (predict) and 'Symlink loop from ...' (prepare)."""
    assert main(["predict", "--model", str(tiny_run_dir), "--input", str(loop), "--out", str(tmp_path / "p.tsv")]) == 2
    err = one_line(capsys)
    assert "symbolic link loop" in err and str(loop) in err and "not found" not in err
    assert main(["prepare", str(loop), "--out", str(tmp_path / "data"), "--no-progress"]) == 2
    err = one_line(capsys)
    assert "symbolic link loop" in err and "Symlink loop from" not in err
    assert not (tmp_path / "p.tsv").exists() and not (tmp_path / "data").exists()


def test_a_symbolic_link_loop_as_model_says_so(loop, sequences_file, tmp_path, capsys):
    """Old code: '.../a/config.json does not exist: expected a run directory'."""
    assert main(["predict", "--model", str(loop), "--input", str(sequences_file), "--out", str(tmp_path / "p.tsv")]) == 2
    err = one_line(capsys)
    assert "--model" in err and "symbolic link loop" in err and "does not exist" not in err


def test_a_dangling_link_names_where_it_points(tiny_run_dir, dangling, sequences_file, tmp_path, capsys):
    """Old code: 'input file not found' / 'config.json does not exist', not where the link points."""
    assert main(["prepare", str(dangling), "--out", str(tmp_path / "data"), "--no-progress"]) == 2
    err = one_line(capsys)
    assert "is a symbolic link to" in err and "gone.txt" in err and "which does not exist" in err
    assert main(["predict", "--model", str(dangling), "--input", str(sequences_file), "--out", str(tmp_path / "p.tsv")]) == 2
    err = one_line(capsys)
    assert "--model" in err and "is a symbolic link to" in err and "gone.txt" in err


def test_an_os_error_of_a_link_loop_is_one_line_saying_so(loop, capsys):
    """Where the operating system meets the loop (here: a path through it), main's OSError line says
    'symbolic link loop' (old code: 'Too many levels of symbolic links; check the path and the disk', exit 1)."""
    status = main(["score", str(loop / "predictions.json"), "--data-dir", str(loop.parent)])
    err = one_line(capsys)
    assert status == 2 and "symbolic link loop" in err, err


@pytest.mark.parametrize("on_bad", ["error", "skip"])
def test_truncated_gzip_is_an_error_naming_the_line(tmp_path, on_bad):
    rng = np.random.default_rng(0)
    rows = ["".join(rng.choice(list("ACGT"), 110)) + f"\t{i % 17}" for i in range(3000)]
    data = gzip.compress(("\n".join(rows) + "\n").encode())
    truncated = data[: len(data) // 2]
    path = write_prepare(tmp_path / "cut.txt", truncated)  # not .gz by name: detected by magic bytes
    complete = zlib.decompressobj(wbits=31).decompress(truncated).count(b"\n")
    with pytest.raises(InputError) as error:
        run_prepare(path, tmp_path / "ds", on_bad=on_bad, chunk_rows=500)
    message = str(error.value)
    assert f"{path}:{complete + 1}: the gzip file is truncated or corrupt" in message
    assert f"reading stopped at line {complete + 1}" in message and 0 < complete < 3000


def test_corrupt_gzip_is_an_error(tmp_path):
    data = bytearray(gzip.compress(dream_text_prepare().encode()))
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "bad.txt.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bad\.txt\.gz:\d+: the gzip file is truncated or corrupt"):
        run_prepare(path, tmp_path / "ds", on_bad="skip")
