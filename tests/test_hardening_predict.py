"""Issue 13, predict / export / the CLI: nothing lost, nothing silently wrong, one line per error.

A tiny run directory (a 20-position model, flanks 2 + 1) is written once per module with
proformer.io.run.write_run_model, so every test here takes well under a second (the ONNX
export ones a few seconds).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from proformer.cli import main
from proformer.io.run import RunInfo, TargetInfo, write_run_model
from proformer.model import ModelConfig, Proformer
from proformer.sequence import Layout

SEQUENCE = "ACGTACGTACGTACGTACGT"  # 20 nt: 17 after the flanks, inside the 20-position window


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run")
    info = RunInfo(model=ModelConfig(kmer=3, dim=8, heads=1, blocks=1, readout=2, length=20),
                   layout=Layout(head=2, tail=1, length=20, pad="n"),
                   target=TargetInfo(names=["expr"], mean=[1.0], std=[2.0], standardized=True),
                   proformer_version="test")
    torch.manual_seed(0)
    write_run_model(path, Proformer(info.model).state_dict(), info)
    return path


def predict_cli(run_dir, *args) -> int:
    return main(["predict", "--model", str(run_dir), *map(str, args), "--no-progress"])


def one_line_error(err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# 1. Atomic output ----------------------------------------------------------------------------

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


def test_failed_predict_leaves_an_existing_out_untouched(run_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n{SEQUENCE}\nACGX{SEQUENCE}\n")
    out = tmp_path / "out.tsv"
    out.write_text("precious\n")
    assert predict_cli(run_dir, "--input", tmp_path / "in.txt", "--out", out) == 2
    assert "in.txt:3" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.tsv"]


def test_interrupted_predict_leaves_no_complete_looking_file(run_dir, tmp_path, monkeypatch):
    import proformer.predict as predict_module
    from proformer.inference import Run

    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n" * 5)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "predict_codes", interrupted)  # every prediction of a run goes through it
    with pytest.raises(KeyboardInterrupt):
        predict_module.predict(run_dir, tmp_path / "in.txt", tmp_path / "out.tsv", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_predict_refuses_an_out_that_is_the_input(run_dir, tmp_path, capsys):
    source = tmp_path / "victim.txt"
    source.write_text(f"{SEQUENCE}\n")
    (tmp_path / "sub").mkdir()
    for out in (source, tmp_path / "sub" / ".." / "victim.txt"):
        assert predict_cli(run_dir, "--input", source, "--out", out) == 2
        one_line_error(capsys.readouterr().err, "is the input file")
        assert source.read_text() == f"{SEQUENCE}\n"


onnx_needed = pytest.mark.skipif(
    any(__import__("importlib").util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="needs the onnx extra",
)


@onnx_needed
def test_export_refuses_the_run_files_and_writes_atomically(run_dir, tmp_path, capsys, monkeypatch):
    import shutil

    import proformer.export as export_module

    run_dir = Path(shutil.copytree(run_dir, tmp_path / "run"))  # the old code overwrote the model: a copy
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    weights = (run_dir / "weights.safetensors").read_bytes()
    config = (run_dir / "config.json").read_text()
    for target in (run_dir / "weights.safetensors", run_dir / "config.json", run_dir / "." / "weights.safetensors"):
        assert main(["export", "--model", str(run_dir), "--onnx", str(target), "--no-check"]) == 2
        one_line_error(capsys.readouterr().err, "destroy the model")
    assert (run_dir / "weights.safetensors").read_bytes() == weights and (run_dir / "config.json").read_text() == config

    def failed_check(*args, **kwargs):
        raise RuntimeError("parity check failed")

    monkeypatch.setattr(export_module, "onnx_parity", failed_check)
    with pytest.raises(RuntimeError):
        export_module.export_onnx(run_dir, out_dir / "m.onnx")
    assert list(out_dir.iterdir()) == []  # neither the .onnx nor a temporary


# 2. Predict's input rules are prepare's ---------------------------------------------------------

def test_predict_refuses_the_mask_letter(run_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\nACGTM{SEQUENCE}\n")
    assert predict_cli(run_dir, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv") == 2
    one_line_error(capsys.readouterr().err, "in.txt:2", "'M'")
    assert not (tmp_path / "o.tsv").exists()


def test_predict_refuses_empty_fasta_records_and_a_header_only_fasta(run_dir, tmp_path, capsys):
    (tmp_path / "empty.fa").write_text(f">a\n{SEQUENCE}\n>b nothing\n>c\n{SEQUENCE}\n")
    assert predict_cli(run_dir, "--input", tmp_path / "empty.fa", "--out", tmp_path / "o.tsv") == 2
    one_line_error(capsys.readouterr().err, "empty.fa:3", "'b'", "no sequence")
    (tmp_path / "headers.fa").write_text(">only a header\n")
    assert predict_cli(run_dir, "--input", tmp_path / "headers.fa", "--out", tmp_path / "o.tsv") == 2
    one_line_error(capsys.readouterr().err, "headers.fa:1")
    assert not (tmp_path / "o.tsv").exists()


def test_predict_counts_and_reports_sequences_longer_than_the_window(run_dir, tmp_path, capsys):
    rows = [SEQUENCE, "A" * 30, SEQUENCE, "C" * 45]  # window 20 + flanks 3: 30 and 45 are cut
    (tmp_path / "in.txt").write_text("\n".join(rows) + "\n")
    assert predict_cli(run_dir, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv") == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "longer than the model's window" in line]
    assert len(warnings) == 1, err
    assert "2 sequence(s)" in warnings[0] and "longest 45 nt" in warnings[0]
    assert len((tmp_path / "o.tsv").read_text().splitlines()) == 1 + 4  # still predicted


def test_predict_refuses_a_sequence_not_longer_than_the_flanks(run_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\nACG\n")  # flanks 2 + 1: nothing left
    assert predict_cli(run_dir, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv") == 2
    one_line_error(capsys.readouterr().err, "in.txt:2", "3 nt", "flanks")


# 3. The TSV carries a header and the FASTA ids -------------------------------------------------

def test_tsv_output_has_a_header_and_the_fasta_record_ids(run_dir, tmp_path):
    from proformer.predict import predict

    (tmp_path / "in.fa").write_text(f">first desc\n{SEQUENCE}\n>second\n{SEQUENCE[:10]}\n{SEQUENCE[10:]}A\n")
    predict(run_dir, tmp_path / "in.fa", tmp_path / "fa.tsv", progress=False)
    header, *rows = (tmp_path / "fa.tsv").read_text().splitlines()
    assert header == "id\tsequence\texpr"
    assert [row.split("\t")[:2] for row in rows] == [["first", SEQUENCE], ["second", SEQUENCE + "A"]]
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n")
    predict(run_dir, tmp_path / "in.txt", tmp_path / "txt.tsv", progress=False)
    header, row = (tmp_path / "txt.tsv").read_text().splitlines()
    assert header == "sequence\texpr" and row.split("\t")[0] == SEQUENCE


# 4. Usage errors, stdout, a closed pipe --------------------------------------------------------

def test_batch_size_below_one_is_a_usage_error(run_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n")
    for size in ("0", "-1"):
        with pytest.raises(SystemExit) as exit_info:
            predict_cli(run_dir, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv", "--batch-size", size)
        assert exit_info.value.code == 2
        assert "--batch-size" in capsys.readouterr().err
    assert not (tmp_path / "o.tsv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_device_cuda_without_cuda_is_one_line(run_dir, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n")
    assert predict_cli(run_dir, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv", "--device", "cuda") == 2
    one_line_error(capsys.readouterr().err, "CUDA is not available")


def test_out_dash_writes_to_stdout_and_messages_to_stderr(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n{SEQUENCE}\n")
    assert predict_cli(run_dir, "--input", "in.txt", "--out", "-") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "sequence\texpr" and len(lines) == 3 and lines[1].startswith(SEQUENCE + "\t")
    assert "wrote" in captured.err
    assert not (tmp_path / "-").exists()


def test_a_closed_stdout_pipe_exits_quietly(run_dir, tmp_path):
    """``proformer predict --out - ... | head``: the reader is gone before the rows are written."""
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n" * 3)
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout fails with EPIPE, deterministically
    try:
        done = subprocess.run([sys.executable, "-m", "proformer.cli", "predict", "--model", str(run_dir), "--input",
                               str(tmp_path / "in.txt"), "--out", "-", "--no-progress"],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=120, check=False)
    finally:
        os.close(write_end)
    err = done.stderr.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert done.returncode == 1


# 5. OSErrors: one line naming the path --------------------------------------------------------

def test_a_directory_where_a_file_is_expected_is_one_line(run_dir, tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n")
    commands = [
        ["predict", "--model", str(run_dir), "--input", str(folder), "--out", str(tmp_path / "o.tsv"), "--no-progress"],
        ["predict", "--model", str(run_dir), "--input", str(tmp_path / "in.txt"), "--out", str(folder), "--no-progress"],
        ["score", str(folder), "--data-dir", str(folder)],
        ["train", "--config", str(folder), "--out", str(tmp_path / "run")],
    ]
    if importlib_spec("onnx") and importlib_spec("onnxscript"):
        commands.append(["export", "--model", str(run_dir), "--onnx", str(folder), "--no-check"])
    for command in commands:
        assert main(command) == 2, command
        one_line_error(capsys.readouterr().err, str(folder))
    assert list(folder.iterdir()) == []


def test_an_unreadable_input_is_one_line_naming_it_with_exit_1(run_dir, tmp_path, unreadable, capsys):
    """prepare, predict and score on a file they may not read: exit 1 (a failure, not a usage
    error) and one line naming the file and the reason."""
    locked = tmp_path / "locked.txt"
    locked.write_text(f"{SEQUENCE}\t1.0\n")
    unreadable(locked)
    commands = [
        ["prepare", str(locked), "--out", str(tmp_path / "data")],
        ["predict", "--model", str(run_dir), "--input", str(locked), "--out", str(tmp_path / "p.tsv"), "--no-progress"],
        ["score", str(locked), "--data-dir", str(Path(__file__).parent / "data" / "dream_mini")],
    ]
    for command in commands:
        assert main(command) == 1, command
        one_line_error(capsys.readouterr().err, f"proformer {command[0]}: error: {locked}", "Permission denied")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked.txt"]


def importlib_spec(name: str):
    import importlib.util

    return importlib.util.find_spec(name)


def test_score_into_a_closed_pipe_prints_no_traceback(tmp_path):
    """``proformer score ... | head``: the reader is gone before the table is written."""
    import json

    import numpy as np
    from helpers import DATA

    mini = DATA / "dream_mini"
    template = json.loads((mini / "public_leaderboard" / "sample_submission.json").read_text())
    values = np.random.default_rng(0).normal(size=len(template))
    (tmp_path / "sub.json").write_text(json.dumps({key: float(v) for key, v in zip(template, values)}))
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout fails with EPIPE, deterministically
    try:
        done = subprocess.run([sys.executable, "-m", "proformer.cli", "score", str(tmp_path / "sub.json"),
                               "--data-dir", str(mini)], stdout=write_end, stderr=subprocess.PIPE, timeout=120, check=False)
    finally:
        os.close(write_end)
    err = done.stderr.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert done.returncode == 1


def test_an_unwritable_out_folder_is_one_line_naming_the_out_path(run_dir, tmp_path, capsys, monkeypatch):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".o.tsv.x1y2.tmp"))

    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n")
    monkeypatch.setattr(tempfile, "mkstemp", denied)  # a read-only folder (tests may run as root)
    assert predict_cli(run_dir, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv") == 1
    one_line_error(capsys.readouterr().err, f"{tmp_path / 'o.tsv'}: cannot write in {tmp_path} (Permission denied)")
    monkeypatch.undo()
    assert predict_cli(run_dir, "--input", tmp_path / "in.txt", "--out", tmp_path / "missing" / "o.tsv") == 2
    one_line_error(capsys.readouterr().err, "does not exist")


def test_bench_with_cuda_on_a_machine_without_it_is_one_line(capsys):
    """The device rule lives in proformer.device.resolve_device: bench gets it as predict does."""
    import torch

    from proformer.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["bench", "predict", "--preset", "grid", "--device", "cuda", "--steps", "1", "--batch-size", "1"]) == 2
    err = capsys.readouterr().err
    assert "CUDA is not available on this machine" in err and "Traceback" not in err


def test_a_read_only_output_folder_is_one_line_for_every_writing_command(run_dir, read_only_dir, tmp_path, capsys):
    """prepare, train, predict, export, quickstart and download into a read-only folder: a
    non-zero exit and one line naming the path, never a traceback."""
    source = tmp_path / "in.tsv"
    source.write_text("".join(f"{SEQUENCE}\t{i}.5\n" for i in range(30)))
    (tmp_path / "seqs.txt").write_text(SEQUENCE + "\n")
    commands = {
        "prepare": ["prepare", source, "--out", read_only_dir / "data", "--trim", "0,0", "--no-progress"],
        "train": ["train", "--preset", "grid", "--data", tmp_path / "data", "--out", read_only_dir / "run", "--no-progress"],
        "predict": ["predict", "--model", run_dir, "--input", tmp_path / "seqs.txt", "--out", read_only_dir / "p.tsv",
                    "--no-progress"],
        "export": ["export", "--model", run_dir, "--onnx", read_only_dir / "m.onnx"],
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
