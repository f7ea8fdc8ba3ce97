"""Tests of :mod:`proformer.predict`."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import (
    DATA,
    IDS,
    MEAN,
    SEQUENCE,
    SEQUENCES_PREDICT_TABLES,
    SEQUENCES_UNITS,
    STD,
    TEST_SEQUENCES,
    Z_UNITS,
    beside_processes,
    cli,
    cli_script,
    one_line_error,
    read_predictions,
    read_table_units,
    write_lines,
    write_tiny_run,
)

import proformer
from proformer.cli import main
from proformer.config import apply_overrides
from proformer.inference import Run
from proformer.io.dataset import write_meta
from proformer.io.inputs import read_input
from proformer.io.run import (
    RunInfo,
    TargetInfo,
    write_run_model,
)
from proformer.model import Proformer, model_preset
from proformer.predict import predict
from proformer.sequence import Layout, encode_padded


def predict_cli(tiny_run, *args) -> int:
    return main(["predict", "--model", str(tiny_run), *map(str, args), "--no-progress"])


@pytest.fixture(scope="module")
def run2(tmp_path_factory):
    return write_tiny_run(tmp_path_factory.mktemp("two") / "run", seed=2, n_targets=2)


def read_table(path) -> tuple[list[str], list[list[str]]]:
    header, *rows = path.read_text().splitlines()
    return header.split("\t"), [row.split("\t") for row in rows]



def headed_table(path, separator="\t"):
    """A table whose sequence column is not first, with an id column and a text column."""
    rows = [separator.join(["note", "name", "sequence"])]
    rows += [separator.join([f"row {i}", name, seq]) for i, (name, seq) in enumerate(zip(IDS, SEQUENCES_PREDICT_TABLES))]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_dataset(directory, sequences, targets=None, names=()):
    """A dataset directory as ``proformer prepare`` writes it (docs/dataset-format.md)."""
    directory.mkdir()
    codes, lengths = encode_padded(sequences)
    targets = np.zeros((len(sequences), 0), np.float32) if targets is None else np.asarray(targets, np.float32)
    np.save(directory / "codes.npy", codes)
    np.save(directory / "lengths.npy", lengths.astype(np.int32))
    np.save(directory / "targets.npy", targets)
    write_meta(directory, {"source": "test", "rows_read": len(sequences), "rows_kept": len(sequences), "dropped": {},
                           "target_names": list(names), "target_mean": [], "target_std": [],
                           "min_length": int(lengths.min()), "max_length": int(lengths.max()),
                           "transforms": {"head": 2, "tail": 1, "length": 20}, "proformer_version": "test",
                           "created": "now"})
    return directory


def test_predict_dream_json_follows_the_submission_order(dream_dir, tmp_path):
    """All 71,103 test sequences in, the 9,045 public-leaderboard values out in the sample
    submission's order. The model sees a 20-position window (each sequence cut to its centre):
    the order does not depend on the window, and the DREAM-wide one costs 5x the time."""
    import torch

    from proformer.predict import predict

    config = model_preset("grid")
    config = apply_overrides(config, ["dim=8", "blocks=1", "readout=1", "kmer=3", "heads=1", "length=20"])
    torch.manual_seed(0)
    info = RunInfo(model=config, layout=Layout(length=20),
                   target=TargetInfo(names=["expression"], mean=[11.0], std=[2.0], standardized=True))
    write_run_model(tmp_path, Proformer(config).state_dict(), info)
    out = tmp_path / "submission.json"
    predict(tmp_path, dream_dir / "test_sequences.txt", out, format="dream-json", data_dir=dream_dir,
            batch_size=4096, progress=False)
    submission = json.loads(out.read_text())
    template = json.loads((dream_dir / "public_leaderboard" / "sample_submission.json").read_text())
    assert list(submission) == list(template) and len(submission) == 9045
    assert np.std(list(submission.values())) > 0


def test_two_processes_write_the_bytes_of_one(tmp_path, monkeypatch):
    """`--devices 2` (CPU, gloo): Lightning starts a second process, each predicts its share of
    every chunk, rank 0 gathers and writes: the same bytes as one process, for a FASTA (ids, one
    target) and a CSV table (an id column, two targets), and no temporary is left. Chunks of 50
    rows (the reader's are 100,000) and batches of 16 give several chunks, each split unevenly."""
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGTN"), int(rng.integers(4, 40)))) for _ in range(300)]
    (tmp_path / "in.fa").write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(sequences)))
    (tmp_path / "in.csv").write_text("name,sequence\n" + "".join(f"r{i},{s}\n" for i, s in enumerate(sequences)))
    runs = {"in.fa": write_tiny_run(tmp_path / "run1", seed=1), "in.csv": write_tiny_run(tmp_path / "run2", seed=2, n_targets=2)}
    extra = {"in.fa": [], "in.csv": ["--seq-col", "sequence", "--id-col", "name"]}
    script = cli_script(tmp_path, setup="import functools\nimport proformer.predict as p\n"
                                         "p.read_input = functools.partial(p.read_input, chunk_rows=50)\n")

    def command(name, out, devices):
        return ["predict", "--model", str(runs[name]), "--input", str(tmp_path / name), "--out", str(tmp_path / out),
                "--batch-size", "16", "--no-progress", "--devices", str(devices), *extra[name]]

    def one_process():
        from proformer import predict as module

        monkeypatch.setattr(module, "read_input", functools.partial(read_input, chunk_rows=50))
        for name in runs:
            assert main(command(name, f"{name}.one.tsv", 1)) == 0

    done = beside_processes(script, {name: command(name, f"{name}.two.tsv", 2) for name in runs}, one_process)
    for name, (status, stdout, stderr) in done.items():
        assert status == 0, stderr[-3000:]
        assert stdout.count("wrote") == 1 and stderr.count("warning:") == 1  # said once, by rank 0
        assert (tmp_path / f"{name}.two.tsv").read_bytes() == (tmp_path / f"{name}.one.tsv").read_bytes()
    assert len((tmp_path / "in.csv.one.tsv").read_text().splitlines()) == 301
    assert sorted(path.name for path in tmp_path.iterdir() if ".tsv" in path.name) == [
        "in.csv.one.tsv", "in.csv.two.tsv", "in.fa.one.tsv", "in.fa.two.tsv"]


def test_failed_predict_leaves_an_existing_out_untouched(tiny_run, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n{SEQUENCE}\nACGX{SEQUENCE}\n")
    out = tmp_path / "out.tsv"
    out.write_text("precious\n")
    assert predict_cli(tiny_run, "--input", tmp_path / "in.txt", "--out", out) == 2
    assert "in.txt:3" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.tsv"]


def test_interrupted_predict_leaves_no_complete_looking_file(tiny_run, tmp_path, monkeypatch):
    import proformer.predict as predict_module

    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n" * 5)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "predict_codes", interrupted)  # every prediction of a run goes through it
    with pytest.raises(KeyboardInterrupt):
        predict_module.predict(tiny_run, tmp_path / "in.txt", tmp_path / "out.tsv", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_predict_refuses_an_out_that_is_the_input(tiny_run, tmp_path, capsys):
    source = tmp_path / "victim.txt"
    source.write_text(f"{SEQUENCE}\n")
    (tmp_path / "sub").mkdir()
    for out in (source, tmp_path / "sub" / ".." / "victim.txt"):
        assert predict_cli(tiny_run, "--input", source, "--out", out) == 2
        one_line_error(capsys.readouterr().err, "is the input file")
        assert source.read_text() == f"{SEQUENCE}\n"


def test_predict_refuses_the_mask_letter(tiny_run, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\nACGTM{SEQUENCE}\n")
    assert predict_cli(tiny_run, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv") == 2
    one_line_error(capsys.readouterr().err, "in.txt:2", "'M'")
    assert not (tmp_path / "o.tsv").exists()


def test_predict_refuses_empty_fasta_records_and_a_header_only_fasta(tiny_run, tmp_path, capsys):
    (tmp_path / "empty.fa").write_text(f">a\n{SEQUENCE}\n>b nothing\n>c\n{SEQUENCE}\n")
    assert predict_cli(tiny_run, "--input", tmp_path / "empty.fa", "--out", tmp_path / "o.tsv") == 2
    one_line_error(capsys.readouterr().err, "empty.fa:3", "'b'", "no sequence")
    (tmp_path / "headers.fa").write_text(">only a header\n")
    assert predict_cli(tiny_run, "--input", tmp_path / "headers.fa", "--out", tmp_path / "o.tsv") == 2
    one_line_error(capsys.readouterr().err, "headers.fa:1")
    assert not (tmp_path / "o.tsv").exists()


def test_predict_counts_and_reports_sequences_longer_than_the_window(tiny_run, tmp_path, capsys):
    rows = [SEQUENCE, "A" * 30, SEQUENCE, "C" * 45]  # window 20 + flanks 3: 30 and 45 are cut
    (tmp_path / "in.txt").write_text("\n".join(rows) + "\n")
    assert predict_cli(tiny_run, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv") == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "longer than the model's window" in line]
    assert len(warnings) == 1, err
    assert "2 sequence(s)" in warnings[0] and "longest 45 nt" in warnings[0]
    assert len((tmp_path / "o.tsv").read_text().splitlines()) == 1 + 4  # still predicted


def test_predict_refuses_a_sequence_not_longer_than_the_flanks(tiny_run, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\nACG\n")  # flanks 2 + 1: nothing left
    assert predict_cli(tiny_run, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv") == 2
    one_line_error(capsys.readouterr().err, "in.txt:2", "3 nt", "flanks")


def test_tsv_output_has_a_header_and_the_fasta_record_ids(tiny_run, tmp_path):
    from proformer.predict import predict

    (tmp_path / "in.fa").write_text(f">first desc\n{SEQUENCE}\n>second\n{SEQUENCE[:10]}\n{SEQUENCE[10:]}A\n")
    predict(tiny_run, tmp_path / "in.fa", tmp_path / "fa.tsv", progress=False)
    header, *rows = (tmp_path / "fa.tsv").read_text().splitlines()
    assert header == "id\tsequence\texpr"
    assert [row.split("\t")[:2] for row in rows] == [["first", SEQUENCE], ["second", SEQUENCE + "A"]]
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n")
    predict(tiny_run, tmp_path / "in.txt", tmp_path / "txt.tsv", progress=False)
    header, row = (tmp_path / "txt.tsv").read_text().splitlines()
    assert header == "sequence\texpr" and row.split("\t")[0] == SEQUENCE


def test_batch_size_below_one_is_a_usage_error(tiny_run, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n")
    for size in ("0", "-1"):
        with pytest.raises(SystemExit) as exit_info:
            predict_cli(tiny_run, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv", "--batch-size", size)
        assert exit_info.value.code == 2
        assert "--batch-size" in capsys.readouterr().err
    assert not (tmp_path / "o.tsv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_device_cuda_without_cuda_is_one_line(tiny_run, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n")
    assert predict_cli(tiny_run, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv", "--device", "cuda") == 2
    one_line_error(capsys.readouterr().err, "CUDA is not available")


def test_out_dash_writes_to_stdout_and_messages_to_stderr(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n{SEQUENCE}\n")
    assert predict_cli(tiny_run, "--input", "in.txt", "--out", "-") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "sequence\texpr" and len(lines) == 3 and lines[1].startswith(SEQUENCE + "\t")
    assert "wrote" in captured.err
    assert not (tmp_path / "-").exists()


def test_a_closed_stdout_pipe_exits_quietly(tiny_run, tmp_path):
    """``proformer predict --out - ... | head``: the reader is gone before the rows are written."""
    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n" * 3)
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout fails with EPIPE, deterministically
    try:
        done = subprocess.run([sys.executable, "-m", "proformer.cli", "predict", "--model", str(tiny_run), "--input",
                               str(tmp_path / "in.txt"), "--out", "-", "--no-progress"],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=120, check=False)
    finally:
        os.close(write_end)
    err = done.stderr.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert done.returncode == 1


def test_an_unreadable_input_is_one_line_naming_it_with_exit_1(tiny_run, tmp_path, unreadable, capsys):
    """prepare, predict and score on a file they may not read: exit 1 (a failure, not a usage
    error) and one line naming the file and the reason."""
    locked = tmp_path / "locked.txt"
    locked.write_text(f"{SEQUENCE}\t1.0\n")
    unreadable(locked)
    commands = [
        ["prepare", str(locked), "--out", str(tmp_path / "data")],
        ["predict", "--model", str(tiny_run), "--input", str(locked), "--out", str(tmp_path / "p.tsv"), "--no-progress"],
        ["score", str(locked), "--data-dir", str(DATA / "dream_mini")],
    ]
    for command in commands:
        assert main(command) == 1, command
        one_line_error(capsys.readouterr().err, f"proformer {command[0]}: error: {locked}", "Permission denied")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked.txt"]


def test_an_unwritable_out_folder_is_one_line_naming_the_out_path(tiny_run, tmp_path, capsys, monkeypatch):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".o.tsv.x1y2.tmp"))

    (tmp_path / "in.txt").write_text(f"{SEQUENCE}\n")
    monkeypatch.setattr(tempfile, "mkstemp", denied)  # a read-only folder (tests may run as root)
    assert predict_cli(tiny_run, "--input", tmp_path / "in.txt", "--out", tmp_path / "o.tsv") == 1
    one_line_error(capsys.readouterr().err, f"{tmp_path / 'o.tsv'}: cannot write in {tmp_path} (Permission denied)")
    monkeypatch.undo()
    assert predict_cli(tiny_run, "--input", tmp_path / "in.txt", "--out", tmp_path / "missing" / "o.tsv") == 2
    one_line_error(capsys.readouterr().err, "does not exist")


def test_a_headed_table_gives_ids_named_columns_and_training_units(run, tmp_path):
    table = headed_table(tmp_path / "in.tsv")
    assert cli("predict", "--model", run, "--input", table, "--seq-col", "sequence", "--id-col", "name",
               "--out", tmp_path / "units.tsv") == 0
    header, rows = read_table(tmp_path / "units.tsv")
    assert header == ["id", "sequence", "expr"]
    assert [row[0] for row in rows] == IDS and [row[1] for row in rows] == SEQUENCES_PREDICT_TABLES
    assert cli("predict", "--model", run, "--input", table, "--seq-col", "sequence", "--id-col", "name",
               "--standardized", "--out", tmp_path / "z.tsv") == 0
    z_header, z_rows = read_table(tmp_path / "z.tsv")
    assert z_header == header and [row[:2] for row in z_rows] == [row[:2] for row in rows]
    units, z = np.array([float(r[2]) for r in rows]), np.array([float(r[2]) for r in z_rows])
    np.testing.assert_allclose(units, z * STD + MEAN, rtol=1e-5, atol=1e-5)
    assert not np.allclose(units, z, atol=1e-3)  # the two units really differ
    # The z-scores are the model's own output: the Python API's standardized=True agrees.
    np.testing.assert_allclose(z, proformer.load(run, device="cpu").predict(SEQUENCES_PREDICT_TABLES, standardized=True),
                               rtol=1e-5, atol=1e-6)


def test_a_csv_with_quoted_ids_and_a_two_target_run(run2, tmp_path):
    lines = ["name,sequence,extra"] + [f'"{name}, rep 1",{seq},x' for name, seq in zip(IDS, SEQUENCES_PREDICT_TABLES)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    assert cli("predict", "--model", run2, "--input", tmp_path / "in.csv", "--seq-col", "sequence", "--id-col", "name",
               "--out", tmp_path / "out.tsv") == 0
    header, rows = read_table(tmp_path / "out.tsv")
    assert header == ["id", "sequence", "target0", "target1"]
    assert [row[0] for row in rows] == [f"{name}, rep 1" for name in IDS]
    expected = proformer.load(run2, device="cpu").predict(SEQUENCES_PREDICT_TABLES)
    assert expected.shape == (len(SEQUENCES_PREDICT_TABLES), 2)
    np.testing.assert_allclose(np.array([[float(v) for v in row[2:]] for row in rows]), expected, rtol=1e-5, atol=1e-5)


def test_a_fasta_gives_a_headed_tsv_with_the_record_ids(run, tmp_path):
    (tmp_path / "in.fa").write_text("".join(f">{name} some description\n{seq}\n" for name, seq in zip(IDS, SEQUENCES_PREDICT_TABLES)))
    assert cli("predict", "--model", run, "--input", tmp_path / "in.fa", "--out", tmp_path / "out.tsv") == 0
    header, rows = read_table(tmp_path / "out.tsv")
    assert header == ["id", "sequence", "expr"] and [row[0] for row in rows] == IDS
    np.testing.assert_allclose([float(row[2]) for row in rows], proformer.load(run, device="cpu").predict(SEQUENCES_PREDICT_TABLES),
                               rtol=1e-5, atol=1e-5)


def test_a_dataset_directory_is_predicted_row_by_row(run, tmp_path):
    dataset = write_dataset(tmp_path / "ds", SEQUENCES_PREDICT_TABLES)  # no targets: predict does not need them
    assert cli("predict", "--model", run, "--input", dataset, "--out", tmp_path / "ds.tsv") == 0
    (tmp_path / "in.txt").write_text("\n".join(SEQUENCES_PREDICT_TABLES) + "\n")
    assert cli("predict", "--model", run, "--input", tmp_path / "in.txt", "--out", tmp_path / "txt.tsv") == 0
    header, rows = read_table(tmp_path / "ds.tsv")
    assert header == ["id", "sequence", "expr"]
    assert [row[0] for row in rows] == [str(i) for i in range(len(SEQUENCES_PREDICT_TABLES))] and [row[1] for row in rows] == SEQUENCES_PREDICT_TABLES
    _, from_file = read_table(tmp_path / "txt.tsv")
    assert [row[2] for row in rows] == [row[1] for row in from_file]  # the same numbers as from the file


def test_python_load_predicts_lists_of_strings_as_predict_writes_them(run, run2, tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(SEQUENCES_PREDICT_TABLES) + "\n")
    assert predict(run, tmp_path / "in.txt", tmp_path / "out.tsv", progress=False)["units"] == "training units"
    _, rows = read_table(tmp_path / "out.tsv")
    model = proformer.load(run, device="cpu", batch_size=4)  # several batches
    values = model.predict([s.lower() for s in SEQUENCES_PREDICT_TABLES])  # either case, as the files
    assert values.shape == (len(SEQUENCES_PREDICT_TABLES),) and values.dtype == np.float64
    np.testing.assert_allclose(values, [float(row[1]) for row in rows], rtol=1e-5, atol=1e-5)
    assert model.target_names == ["expr"]
    assert model.predict(SEQUENCES_PREDICT_TABLES[0]).shape == (1,) and model.predict([]).shape == (0,)
    assert proformer.load(run2, device="cpu").predict(SEQUENCES_PREDICT_TABLES[:3]).shape == (3, 2)
    with pytest.raises(ValueError, match=r"sequence 1: .*'X'"):
        model.predict([SEQUENCES_PREDICT_TABLES[0], "ACGTX" + SEQUENCES_PREDICT_TABLES[1]])


def test_column_errors_are_one_line_naming_the_flag(run, tmp_path, capsys):
    table = headed_table(tmp_path / "in.tsv")
    out = tmp_path / "out.tsv"
    cases = [
        (["--seq-col", "seq"], ["--seq-col 'seq'", "'name'", "'sequence'"]),
        (["--seq-col", "sequence", "--id-col", "id"], ["--id-col 'id'", "'name'"]),
        ([], ["in.tsv:1", "--seq-col sequence"]),  # a header read as data would fail at line 1
        (["--id-col", "name"], ["--id-col needs --seq-col"]),
    ]
    for flags, fragments in cases:
        assert cli("predict", "--model", run, "--input", table, "--out", out, *flags) == 2, flags
        one_line_error(capsys.readouterr().err, *fragments)
    (tmp_path / "in.fa").write_text(f">a\n{SEQUENCES_PREDICT_TABLES[0]}\n")
    assert cli("predict", "--model", run, "--input", tmp_path / "in.fa", "--seq-col", "x", "--out", out) == 2
    one_line_error(capsys.readouterr().err, "--seq-col", "FASTA")
    (tmp_path / "folder").mkdir()
    assert cli("predict", "--model", run, "--input", tmp_path / "folder", "--out", out) == 2
    one_line_error(capsys.readouterr().err, "--input", "not a prepared dataset")
    assert not out.exists()


def test_predict_reads_the_runs_sequence_column(trained, tmp_path, capsys):
    capsys.readouterr()
    assert cli("predict", "--model", trained["run"], "--input", trained["test"], "--out", tmp_path / "o.tsv") == 0
    line = f"reading {trained['test']} with the run's columns: sequence 'seq', targets 'mean_value'"
    assert line in capsys.readouterr().err.splitlines()
    header, *rows = (tmp_path / "o.tsv").read_text().splitlines()
    assert header.split("\t") == ["sequence", "mean_value"]
    assert [row.split("\t")[0] for row in rows] == TEST_SEQUENCES
    predict(trained["run"], trained["test"], tmp_path / "given.tsv", seq_col="seq", device="cpu", progress=False)
    assert (tmp_path / "given.tsv").read_text() == (tmp_path / "o.tsv").read_text()


def test_predict_writes_every_row_and_can_destandardise(trained_run, planted_dataset, tmp_path):
    run_dir, _ = trained_run
    source = planted_dataset.parent / "planted.tsv"
    out = tmp_path / "pred.tsv"
    predict(run_dir, source, out, standardized=True, progress=False)
    header, *lines = out.read_text().splitlines()  # predict's TSV: a header line, then a row each
    assert header.split("\t")[0] == "sequence" and len(lines) == 2000
    assert [line.split("\t")[0] for line in lines] == [line.split("\t")[0] for line in source.read_text().splitlines()]
    z = read_predictions(out)
    predict(run_dir, source, tmp_path / "raw.tsv", progress=False)  # training units, the default
    raw = read_predictions(tmp_path / "raw.tsv")
    info = json.loads((run_dir / "config.json").read_text())
    np.testing.assert_allclose(raw, z * info["target"]["std"][0] + info["target"]["mean"][0], rtol=1e-4, atol=1e-4)


def test_predict_chunks_defaults_to_training_units(case, tmp_path):
    model, path = case.load(), write_lines(tmp_path / "in.txt")
    default = np.concatenate([values for _, values in model.predict_chunks(read_input(path, chunk_rows=3))])
    z = np.concatenate([values for _, values in model.predict_chunks(read_input(path, chunk_rows=3), standardized=True)])
    np.testing.assert_allclose(default, case.units(SEQUENCES_UNITS), rtol=1e-12)
    np.testing.assert_allclose(z, case.raw(SEQUENCES_UNITS), rtol=1e-12, atol=1e-15)


def test_predict_file_and_command_default_to_training_units(case, tmp_path):
    path = write_lines(tmp_path / "in.txt")
    units, raw = case.units(SEQUENCES_UNITS), case.raw(SEQUENCES_UNITS)
    assert predict(case.model_arg, path, tmp_path / "api.tsv", device="cpu", progress=False)["units"] == "training units"
    assert predict(case.model_arg, path, tmp_path / "api_z.tsv", device="cpu", standardized=True,
                   progress=False)["units"] == Z_UNITS
    assert cli("predict", *case.cli_models(), "--input", path, "--device", "cpu", "--out", tmp_path / "cli.tsv") == 0
    assert cli("predict", *case.cli_models(), "--input", path, "--device", "cpu", "--standardized",
               "--out", tmp_path / "cli_z.tsv") == 0
    for name, expected in (("api", units), ("cli", units), ("api_z", raw), ("cli_z", raw)):
        header, rows = read_table_units(tmp_path / f"{name}.tsv")
        assert header == ["sequence", *case.names] and [row[0] for row in rows] == SEQUENCES_UNITS
        values = np.array([[float(v) for v in row[1:]] for row in rows])
        np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6, err_msg=name)  # 6 significant digits
