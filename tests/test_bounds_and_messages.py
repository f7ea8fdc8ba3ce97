"""Issue 25, items 6 and 8: every numeric option bounded (or its memory checked before the work
starts), and clear one-line messages for a symbolic link loop, a dangling link, ``prepare FILE
--out FILE``, a plain-gzip genome and a genome index older than its FASTA.

Each finding is re-tried through ``proformer.cli.main`` in-process: the exit code, exactly one
line on stderr, no traceback, and the key words of the message.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_RUN_LENGTH, planted_motif_model, random_dna, tiny_run_info, write_tiny_run

from proformer.cli import main


def one_line(capsys) -> str:
    """stderr, checked to be one line without a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def usage_error(capsys, argv: list[str]) -> str:
    """An argparse refusal: SystemExit(2) and one stderr line."""
    with pytest.raises(SystemExit) as stop:
        main([str(word) for word in argv])
    assert stop.value.code == 2
    return one_line(capsys)


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return write_tiny_run(tmp_path / "run")


@pytest.fixture
def sequences_file(tmp_path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("".join(s + "\n" for s in random_dna(np.random.default_rng(0), 3, TINY_RUN_LENGTH + 3)))
    return path


# -- 1. numeric options: bounded on the command line and in the API ---------------------------------


def test_attribute_steps_one_million_is_one_line_naming_the_flag_and_the_limit(run_dir, sequences_file, tmp_path,
                                                                              capsys):
    """The finding: ``attribute --steps 1000000`` died with a traceback (captum asked numpy for a
    7 TiB Gauss-Legendre matrix). Old code: no SystemExit (a MemoryError from numpy)."""
    err = usage_error(capsys, ["attribute", "--model", run_dir, "--input", sequences_file, "--out", tmp_path / "out",
                               "--method", "integrated_gradients", "--steps", "1000000", "--no-progress"])
    assert "--steps" in err and "1000000" in err and "1,000" in err and "limit" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, flag, limit", [
    (["attribute", "--method", "deep_lift_shap", "--shuffles", "1001"], "--shuffles", "1,000"),
    (["attribute", "--method", "deep_lift_shap", "--seed", "-1"], "--seed", "0"),
    (["ism", "--top", "10001"], "--top", "10,000"),
    (["ism", "--start", "-1"], "--start", "0"),
    (["design", "--target", "high", "--max-edits", "1001"], "--max-edits", "1,000"),
    (["design", "--target", "high", "--max-edits", "2", "--beam", "1001"], "--beam", "1,000"),
    (["predict", "--batch-size", "65537"], "--batch-size", "65,536"),
])
def test_numeric_options_of_the_model_commands_are_bounded(run_dir, sequences_file, tmp_path, capsys, argv, flag,
                                                           limit):
    """Old code: each ran (the tiny run takes any of these) and returned 0: no SystemExit."""
    command, *options = argv
    err = usage_error(capsys, [command, "--model", run_dir, "--input", sequences_file, "--out", tmp_path / "out",
                               *options, "--no-progress"])
    assert flag in err and limit in err and "limit" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, flag", [
    (["sweep", "--grid", "ablation", "--out", "{tmp}/s", "--dry-run", "--folds", "101"], "--folds"),
    (["sweep", "--grid", "ablation", "--out", "{tmp}/s", "--dry-run", "--epochs", "0"], "--epochs"),
    (["sweep", "--grid", "ablation", "--out", "{tmp}/s", "--dry-run", "--data-fraction", "1.5"], "--data-fraction"),
    (["sweep", "--grid", "ablation", "--out", "{tmp}/s", "--dry-run", "--data-fraction", "nan"], "--data-fraction"),
    (["atac", "prepare", "--fasta", "g.fa", "--signal", "s.bw", "--peaks", "p.bed", "--out", "{tmp}/a",
      "--max-n-frac", "1.5"], "--max-n-frac"),
    (["atac", "prepare", "--fasta", "g.fa", "--signal", "s.bw", "--peaks", "p.bed", "--out", "{tmp}/a",
      "--window", "1000000"], "--window"),
    (["bench", "predict", "--preset", "grid", "--steps", "0"], "--steps"),
])
def test_numeric_options_of_the_other_commands_are_bounded(tmp_path, capsys, argv, flag):
    """Old code: the sweep dry runs printed their cells (exit 0), atac prepare and bench returned 2
    from the function's own check or a missing file, without a SystemExit."""
    err = usage_error(capsys, [word.format(tmp=tmp_path) for word in argv])
    assert flag in err, err


def test_the_help_shows_the_bounds(capsys):
    """The limits are in --help, not only in the errors. Old code: no '1 to 1,000' in the help."""
    with pytest.raises(SystemExit):
        main(["attribute", "--help"])
    out = capsys.readouterr().out
    assert "1 to 1,000" in " ".join(out.split())


def test_the_python_api_refuses_the_same_values():
    """attribute's steps and n_shuffles, ism's start and end, design's max_edits and beam. Old
    code: steps=10**6 raised numpy's MemoryError, start=2.5 was truncated to 2, max_edits=10**6
    and beam=10**6 were searched: no ValueError naming the limit."""
    from proformer.inference import Run
    from proformer.interpret import attribute, design, ism

    model = Run(planted_motif_model(), tiny_run_info())
    sequence = "TT" + "C" * 8 + "GATA" + "C" * 8 + "T"
    for options, name in (({"steps": 10**6}, "steps"), ({"n_shuffles": 10**6}, "n_shuffles"),
                          ({"steps": True}, "steps")):
        with pytest.raises(ValueError, match=rf"{name}=.*1,000"):
            attribute(model, [sequence], "integrated_gradients", **options)
    for options, name in (({"start": 2.5}, "start"), ({"end": 4.0}, "end"), ({"start": -1}, "start")):
        with pytest.raises(ValueError, match=rf"{name}=.*whole number"):
            ism(model, [sequence], **options)
    with pytest.raises(ValueError, match=r"max_edits=1000000.*1,000"):
        design(model, [sequence], "high", 10**6)
    with pytest.raises(ValueError, match=r"beam=1000000.*1,000"):
        design(model, [sequence], "high", 2, beam=10**6)


# -- 1b. products of options: the memory estimated before the work ---------------------------------


@pytest.fixture
def small_machine(monkeypatch):
    """The machine has 1 MiB of memory (old code: there is no proformer.limits to patch)."""
    monkeypatch.setattr("proformer.limits.physical_memory", lambda: 1 << 20)


@pytest.mark.parametrize("options, flag", [
    (["attribute", "--method", "deep_lift_shap", "--shuffles", "1000"], "--shuffles"),
    (["attribute", "--method", "integrated_gradients", "--steps", "1000"], "--steps"),
    (["design", "--target", "high", "--max-edits", "2", "--beam", "1000"], "--beam"),
])
def test_a_product_of_options_beyond_the_memory_is_refused_before_the_work(run_dir, sequences_file, tmp_path,
                                                                         capsys, small_machine, options, flag):
    """Within the bounds but too big for this (patched, 1 MiB) machine: exit 2, one line with what
    it would need, what the machine has and the flag to lower; nothing written."""
    command, *rest = options
    out = tmp_path / ("out.tsv" if command == "design" else "out")
    status = main([command, "--model", str(run_dir), "--input", str(sequences_file), "--out", str(out), *rest,
                   "--device", "cpu", "--no-progress"])
    err = one_line(capsys)
    assert status == 2
    assert "would need about" in err and "1.0 MiB" in err and "lower" in err and flag in err, err
    assert not out.exists()


def test_the_memory_refusal_is_a_value_error_of_its_own(small_machine):
    from proformer.inference import Run
    from proformer.interpret import attribute
    from proformer.limits import NotEnoughMemory

    model = Run(planted_motif_model(), tiny_run_info())
    with pytest.raises(NotEnoughMemory, match="n_shuffles=1000") as caught:
        attribute(model, ["TT" + "C" * 20 + "T"] * 50, "deep_lift_shap", n_shuffles=1000)
    assert isinstance(caught.value, ValueError)


def test_physical_memory_is_known_here():
    from proformer.limits import physical_memory

    assert physical_memory() > 100 * 2**20


# -- 2. messages ------------------------------------------------------------------------------------


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


def test_a_symbolic_link_loop_as_input_says_so(run_dir, loop, tmp_path, capsys):
    """Old code: 'input file not found: .../a' (predict) and 'Symlink loop from ...' (prepare)."""
    assert main(["predict", "--model", str(run_dir), "--input", str(loop), "--out", str(tmp_path / "p.tsv")]) == 2
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


def test_a_dangling_link_names_where_it_points(run_dir, dangling, sequences_file, tmp_path, capsys):
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


@pytest.mark.parametrize("same", [True, False])
def test_prepare_out_naming_a_file_says_that_prepare_writes_a_directory(tmp_path, capsys, same):
    """Old code: 'FILE: File exists' (and a FILE.lock left behind)."""
    source = tmp_path / "rows.txt"
    source.write_text("".join(f"{s}\t{i}.5\n" for i, s in enumerate(random_dna(np.random.default_rng(1), 5, 30))))
    other = tmp_path / "notes.txt"
    other.write_text("keep me\n")
    out = source if same else other
    before = out.read_bytes()
    assert main(["prepare", str(source), "--out", str(out), "--trim", "0,0", "--no-progress"]) == 2
    err = one_line(capsys)
    assert "--out" in err and ("the input" if same else "an existing file") in err and "dataset directory" in err, err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "rows.txt"]  # no lock, no staging


# -- genomes ----------------------------------------------------------------------------------------

WIDTH = TINY_RUN_LENGTH  # the genomic run: no flanks, 20 positions


@pytest.fixture
def genome(tmp_path) -> dict:
    """A 200-nt chr1, a genomic run (no flanks) and a VCF of one SNV in the middle."""
    pytest.importorskip("pyfaidx")
    import torch

    from proformer.io.run import write_run_model
    from proformer.model import Proformer
    from proformer.sequence import Layout

    chr1 = random_dna(np.random.default_rng(4), 1, 200)[0]
    text = ">chr1\n" + "".join(chr1[i : i + 60] + "\n" for i in range(0, 200, 60))
    fasta = tmp_path / "genome.fa"
    fasta.write_text(text)
    vcf = tmp_path / "variants.vcf"
    alt = "ACGT"[("ACGT".index(chr1[99]) + 1) % 4]
    vcf.write_text(f"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\nchr1\t100\tsnv\t{chr1[99]}\t{alt}\n")
    info = dataclasses.replace(tiny_run_info(), layout=Layout(head=0, tail=0, length=WIDTH))
    torch.manual_seed(5)
    run = tmp_path / "genomic_run"
    run.mkdir()
    write_run_model(run, Proformer(info.model).state_dict(), info)
    return {"fasta": fasta, "text": text, "vcf": vcf, "run": run}


def variant_effect(genome: dict, fasta: Path, out: Path) -> int:
    return main(["variant-effect", "--model", str(genome["run"]), "--vcf", str(genome["vcf"]), "--fasta", str(fasta),
                 "--out", str(out), "--device", "cpu", "--no-progress"])


def test_a_plain_gzip_genome_says_bgzip_it_or_decompress_it(genome, tmp_path, capsys):
    """Old code: pyfaidx's or Biopython's own message about compression."""
    plain_gzip = tmp_path / "genome.fa.gz"
    plain_gzip.write_bytes(gzip.compress(genome["text"].encode()))
    assert variant_effect(genome, plain_gzip, tmp_path / "effects.tsv") == 2
    err = one_line(capsys)
    assert "not with bgzip" in err and "bgzip it" in err and "decompress it" in err and str(plain_gzip) in err, err
    assert not (tmp_path / "effects.tsv").exists()


def test_bgzip_is_told_apart_from_plain_gzip(genome, tmp_path):
    pysam = pytest.importorskip("pysam")
    from proformer.io.genome import is_bgzip

    pysam.tabix_compress(str(genome["fasta"]), str(tmp_path / "genome.fa.bgz"))
    assert is_bgzip((tmp_path / "genome.fa.bgz").read_bytes()[:64])
    assert not is_bgzip(gzip.compress(b">chr1\nACGT\n"))
    assert not is_bgzip(b">chr1\nACGT\n")


def test_an_index_older_than_its_fasta_is_rebuilt_and_said_so(genome, tmp_path, capsys):
    """An index of another genome left beside the FASTA: one line saying the .fai is older than the
    FASTA and is rebuilt, then the right sequence. Old code: nothing said (pyfaidx rebuilt silently)."""
    import pyfaidx

    fasta = genome["fasta"]
    stale = tmp_path / "stale.fa"
    stale.write_text(">chr1\n" + "A" * 30 + "\n")
    pyfaidx.Fasta(str(stale)).close()
    os.replace(tmp_path / "stale.fa.fai", tmp_path / "genome.fa.fai")  # the index of another, shorter genome
    when = fasta.stat().st_mtime
    os.utime(tmp_path / "genome.fa.fai", (when - 100, when - 100))
    assert variant_effect(genome, fasta, tmp_path / "effects.tsv") == 0
    err = one_line(capsys)
    assert "genome.fa.fai" in err and "older than" in err and "rebuild" in err, err
    assert (tmp_path / "genome.fa.fai").stat().st_mtime >= when
    assert "chr1\t200\t" in (tmp_path / "genome.fa.fai").read_text()
    # Now current: used without a word.
    assert variant_effect(genome, fasta, tmp_path / "effects2.tsv") == 0
    assert capsys.readouterr().err == ""
