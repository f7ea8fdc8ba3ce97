"""Tests of :mod:`proformer.io.folders`."""

from __future__ import annotations

import errno
from pathlib import Path

import matplotlib
import pytest
from helpers import (
    SEQUENCE,
    no_temporaries,
    one_line_error,
)
from matplotlib.figure import Figure

from proformer.cli import main

matplotlib.use("Agg")


def _fasta(path: Path, names: list[str]) -> Path:
    bases = "ACGT"
    records = [f">{name}\n" + "".join(bases[(i * 7 + j * (i + 1)) % 4] for j in range(20)) + "\n"
               for i, name in enumerate(names)]
    path.write_text("".join(records))
    return path


def _ism(tiny_run, fasta, out, top) -> int:
    return main(["ism", "--model", str(tiny_run), "--input", str(fasta), "--out", str(out), "--top", str(top),
                 "--no-progress"])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _half_written_savefig(self, fname, *args, **kwargs):
    with open(fname, "wb") as handle:
        handle.write(b"\x89PNG half")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_read_only_output_folder_is_one_line_for_every_writing_command(tiny_run, read_only_dir, tmp_path, capsys):
    """prepare, train, predict, export, quickstart and download into a read-only folder: a
    non-zero exit and one line naming the path, never a traceback."""
    source = tmp_path / "in.tsv"
    source.write_text("".join(f"{SEQUENCE}\t{i}.5\n" for i in range(30)))
    (tmp_path / "seqs.txt").write_text(SEQUENCE + "\n")
    commands = {
        "prepare": ["prepare", source, "--out", read_only_dir / "data", "--trim", "0,0", "--no-progress"],
        "train": ["train", "--preset", "grid", "--data", tmp_path / "data", "--out", read_only_dir / "run", "--no-progress"],
        "predict": ["predict", "--model", tiny_run, "--input", tmp_path / "seqs.txt", "--out", read_only_dir / "p.tsv",
                    "--no-progress"],
        "export": ["export", "--model", tiny_run, "--onnx", read_only_dir / "m.onnx"],
        "quickstart": ["quickstart", "--out", read_only_dir / "qs", "--n", "200", "--no-progress"],
        "download": ["download", "dream2022", "--out", read_only_dir / "dl", "--no-progress"],
    }
    assert main(["prepare", str(source), "--out", str(tmp_path / "data"), "--trim", "0,0", "--no-progress"]) == 0
    capsys.readouterr()
    for name, argv in commands.items():
        if name == "export":
            pytest.importorskip("onnxscript")
        status = main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert status != 0, name
        # One error line; train may say first what it took from the data (its shape, memory).
        errors = [line for line in err.splitlines() if line.startswith(f"proformer {name}: error:")]
        assert "Traceback" not in err and len(errors) == 1 and err.rstrip().endswith(errors[0]), (name, err)
        assert str(read_only_dir) in errors[0], (name, err)
        if name != "train":
            assert len(err.strip().splitlines()) == 1, (name, err)


def test_ism_into_an_earlier_folder_holds_only_this_runs_logos(tiny_run, tmp_path):
    out = tmp_path / "ism"
    first = _fasta(tmp_path / "first.fa", [f"old{i}" for i in range(5)])
    assert _ism(tiny_run, first, out, 3) == 0
    assert len(list((out / "logos").glob("*.png"))) == 3
    (out / "notes.txt").write_text("my notes\n")  # not ism's: it stays
    second = _fasta(tmp_path / "second.fa", [f"new{i}" for i in range(5)])
    assert _ism(tiny_run, second, out, 1) == 0
    logos = sorted(p.name for p in (out / "logos").iterdir())
    assert len(logos) == 1 and logos[0].startswith("001_new"), logos
    assert sorted(p.name for p in out.iterdir()) == ["ism.npz", "logos", "notes.txt"]
    assert (out / "notes.txt").read_text() == "my notes\n"
    import numpy as np

    assert list(np.load(out / "ism.npz")["ids"]) == [f"new{i}" for i in range(5)]
    assert _ism(tiny_run, second, out, 0) == 0  # no logos asked for: none left
    assert sorted(p.name for p in out.iterdir()) == ["ism.npz", "notes.txt"]
    no_temporaries(tmp_path)


def test_a_full_disk_during_ism_leaves_the_earlier_folder_and_names_the_file(tiny_run, tmp_path, capsys,
                                                                            monkeypatch):
    out = tmp_path / "ism"
    assert _ism(tiny_run, _fasta(tmp_path / "first.fa", [f"old{i}" for i in range(5)]), out, 3) == 0
    before = _snapshot(out)
    capsys.readouterr()
    monkeypatch.setattr(Figure, "savefig", _half_written_savefig)  # ism.npz is written, then the first logo fails
    assert _ism(tiny_run, _fasta(tmp_path / "second.fa", [f"new{i}" for i in range(5)]), out, 3) == 1
    line = one_line_error(capsys.readouterr().err)
    assert f"{out / 'logos' / '001_new'}" in line and "no space left" in line, line
    assert ".tmp" not in line and "staging" not in line, line
    assert _snapshot(out) == before, "the earlier, complete output was changed"
    no_temporaries(out)
    no_temporaries(tmp_path)


def test_a_failed_ism_into_a_new_folder_leaves_nothing(tiny_run, tmp_path, monkeypatch):
    out = tmp_path / "ism"
    monkeypatch.setattr(Figure, "savefig", _half_written_savefig)
    assert _ism(tiny_run, _fasta(tmp_path / "in.fa", ["a", "b"]), out, 1) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fa"]


def test_attribute_into_an_earlier_folder_drops_the_earlier_modisco_inputs(tiny_run, tmp_path):
    out = tmp_path / "attributions"
    fasta = _fasta(tmp_path / "in.fa", ["a", "b", "c"])
    command = ["attribute", "--model", str(tiny_run), "--input", str(fasta), "--out", str(out), "--method", "saliency",
               "--no-progress"]
    assert main(command + ["--hypothetical"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["attributions.npz", "modisco_hyp.npz", "modisco_ohe.npz"]
    (out / "modisco.h5").write_bytes(b"from an earlier TF-MoDISco run")
    (out / "README").write_text("mine\n")
    assert main(command) == 0  # no hypothetical contributions: no TF-MoDISco inputs belong to this run
    assert sorted(p.name for p in out.iterdir()) == ["README", "attributions.npz"]


def test_evaluate_out_dir_holds_only_this_runs_scatters(tiny_run, tmp_path):
    table = tmp_path / "labelled.tsv"
    table.write_text("sequence\texpr\n" + "".join(f"{SEQUENCE[i:] + SEQUENCE[:i]}\t{i / 3:.3f}\n" for i in range(12)))
    out = tmp_path / "report"
    out.mkdir()
    (out / "scatter_other_target.png").write_bytes(b"an earlier run's plot")
    (out / "metrics.json").write_text("{}\n")
    (out / "notes.md").write_text("mine\n")
    assert main(["evaluate", "--model", str(tiny_run), "--data", str(table), "--seq-col", "sequence", "--out-dir",
                 str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "notes.md", "scatter_expr.png"]
    assert (out / "scatter_expr.png").read_bytes().startswith(b"\x89PNG")
    assert '"expr"' in (out / "metrics.json").read_text()
