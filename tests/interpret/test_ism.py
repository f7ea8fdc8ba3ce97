"""Tests of :mod:`proformer.interpret.ism`."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import (
    HEAD,
    IDS,
    SEQUENCES_PREDICT_TABLES,
    SEQUENCES_UNITS,
    TAIL,
    TINY_MODEL,
    TINY_RUN_HEAD,
    TINY_RUN_TAIL,
    Z_UNITS,
    as_overrides,
    beside_processes,
    cli,
    cli_script,
    mutant,
    planted_motif_model,
    read_predictions,
    tiny_run_info,
    write_tiny_run,
)

import proformer
from proformer.cli import main
from proformer.data.prepare import prepare
from proformer.inference import Run
from proformer.interpret import ism
from proformer.sequence import encode_padded


@pytest.fixture(scope="module")
def lentimpra_run(lentimpra, tmp_path_factory):
    from proformer.config import load_run_config
    from proformer.train import train

    root = tmp_path_factory.mktemp("flanks")
    prepare(lentimpra, root / "data", progress=False)
    # Narrower than TINY_MODEL (ISM and design predict thousands of 230-nt variants): the flanks
    # the test checks are the data's, whatever the model's width.
    overrides = [f"data.path={root / 'data'}", *as_overrides({**TINY_MODEL, "dim": 8, "heads": 1, "data.split": "hash:0.8",
                                                               "batch_size": 64, "epochs": 1, "lr": 3e-3})]
    train(load_run_config(preset="grid", overrides=overrides), root / "run", progress=False)
    return root / "run"


#: Inputs of several lengths: shorter than the window, exactly it (20 + 3 flank nt), longer
#: (cut to the centre), and one with an N.
SEQUENCES = ["ACGTTGCAAGCTTACG", "GATTACAGATTACAGATTACAGA", "TTGCA" * 6, "ACGTNACGTACGTAAC"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_tiny_run(tmp_path_factory.mktemp("run"), seed=3)


def mutated(sequence: str, position: int, base: int) -> str:
    return sequence[:position] + "ACGT"[base] + sequence[position + 1 :]


def fasta_of(path, sequences):
    path.write_text("".join(f">s{i} note\n{s}\n" for i, s in enumerate(sequences)))
    return path


def cli_ism(runs, fasta, out) -> dict:
    """``proformer ism`` with every run of ``runs`` as a ``--model``; its ism.npz, loaded."""
    models = [word for run in runs for word in ("--model", str(run))]
    assert main(["ism", *models, "--input", str(fasta), "--out", str(out), "--top", "0", "--no-progress"]) == 0
    with np.load(out / "ism.npz") as saved:
        return {key: saved[key] for key in saved.files}


def test_ism_and_design_leave_the_found_flanks_alone(lentimpra, lentimpra_run, one_thread):
    sequences = [line.split("\t")[1] for line in lentimpra.read_text().splitlines()[1:4]]
    model = proformer.load(lentimpra_run, device="cpu")
    assert model.predict(sequences).shape == (3,)  # whole 230-nt rows in, flanks and all
    effects = proformer.ism(model, sequences).effects
    assert effects.shape == (3, 4, 230)
    unseen = np.isnan(effects).all(axis=1)  # (3, 230)
    assert unseen[:, :15].all() and unseen[:, -15:].all()  # old: the model saw the primers (effects there)
    assert not unseen[:, 15:-15].any()
    for found in proformer.design(model, sequences, "high", 3):
        assert found.edits  # a random tiny model still finds some edit that raises its prediction
        assert all(15 <= position < 215 for position, _, _ in found.edits), found.edits
        final = found.steps()[-1]
        assert final.startswith(HEAD) and final.endswith(TAIL) and len(final) == 230


def test_ism_finds_the_planted_motif_and_nothing_else():
    model = Run(planted_motif_model("GATA"), tiny_run_info())
    sequences = ["CCCCCGATACCCCCCCCCCCC", "TTTTTTTTTGATATTTT"]
    result = ism(model, sequences, standardized=True)  # z-scores: the model's own count of matches
    assert result.reference.tolist() == [1.0, 1.0]
    for row, start in enumerate((5, 9)):
        lowest = np.min(result.effects[row], axis=0)  # NaN where unseen
        motif = np.arange(start, start + 4)
        assert (lowest[motif] == -1).all()  # any change of the motif destroys the one match
        others = np.setdiff1d(np.flatnonzero(~np.isnan(lowest)), motif)
        assert len(others) >= 8
        assert (lowest[others] == 0).all()


def test_progress_reaches_a_log_file_and_is_silent_when_disabled(capsys):
    """Progress goes through proformer.progress.Progress: stderr that is not a terminal (a log
    file; here pytest's capture) gets a plain final line with the count, not nothing."""
    model = Run(planted_motif_model("GATA"), tiny_run_info())
    sequences = ["CCCCCGATACCCCCCCCCCCC", "TTTTTTTTTGATATTTT"]  # no N: 3 substitutions per seen position
    result = ism(model, sequences, progress=True)
    seen = int((~np.isnan(result.effects).all(axis=1)).sum())
    total = len(sequences) + 3 * seen
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "\r" not in captured.err
    assert re.fullmatch(rf"ISM forward passes: 100%\|#+\| {total}/{total} \[.*/s\]", lines[0]), lines

    ism(model, sequences, progress=False)
    assert capsys.readouterr().err == ""


def test_effects_equal_predictions_of_the_mutated_strings(run_dir):
    """Every mutant, predicted through the batched path, equals predict() of the mutated string;
    the reference base is 0; positions the layout hides are NaN."""
    model = proformer.load(run_dir, "cpu", batch_size=7)  # batches that split sequences
    with pytest.warns(RuntimeWarning, match=r"1 sequence\(s\) are longer than the model's window .* sequence 2, 30 nt"):
        result = ism(model, SEQUENCES, standardized=True)
    reference = model.predict(SEQUENCES, standardized=True)
    np.testing.assert_allclose(result.reference, reference, rtol=1e-5, atol=1e-6)
    codes, lengths = encode_padded(SEQUENCES)
    window = model.layout.window_positions(lengths)
    rows, bases, positions, expected = [], [], [], []
    for row, sequence in enumerate(SEQUENCES):
        for position in range(len(sequence)):
            for base in range(4):
                if window[row, position] >= 0 and codes[row, position] != base:
                    rows.append(row), bases.append(base), positions.append(position)
                    expected.append(mutated(sequence, position, base))
    got = result.effects[rows, bases, positions]
    np.testing.assert_allclose(got, model.predict(expected, standardized=True) - reference[rows], rtol=1e-4, atol=1e-5)
    seen = window >= 0
    assert result.evaluated == len(SEQUENCES) + len(expected)
    for row, sequence in enumerate(SEQUENCES):
        assert np.isnan(result.effects[row][:, ~seen[row]]).all()
        is_base = seen[row] & (codes[row] < 4)
        assert (result.effects[row, codes[row, is_base], np.flatnonzero(is_base)] == 0).all()
    assert np.isnan(result.effects[0, :, :TINY_RUN_HEAD]).all()
    assert np.isnan(result.effects[0, :, len(SEQUENCES[0]) - TINY_RUN_TAIL :]).all()
    assert np.isnan(result.effects[1, :, 22]).all() and not np.isnan(result.effects[1, :, 21]).all()  # 2 + 20 + 1 nt
    assert not np.isnan(result.effects[3, :, 4]).any()  # an N: all four bases are mutants


def test_each_mutant_is_the_layout_of_the_mutated_string_on_both_strands(run_dir, monkeypatch):
    model = proformer.load(run_dir, "cpu", batch_size=16)
    seen_batches = []
    real = model.model_output  # every forward pass of the run's scorer goes through it

    def record(codes):
        seen_batches.append(np.asarray(codes.cpu() if hasattr(codes, "cpu") else codes))
        return real(codes)

    monkeypatch.setattr(model, "model_output", record)
    sequences = SEQUENCES[:3]
    ism(model, sequences)
    model_inputs = np.concatenate(seen_batches)[len(sequences):]  # after the reference pass
    codes, lengths = encode_padded(sequences)
    window = model.layout.window_positions(lengths)
    expected = [mutated(s, p, b) for row, s in enumerate(sequences) for p in range(len(s)) for b in range(4)
                if window[row, p] >= 0 and codes[row, p] != b]
    laid = model.lay_out(expected)
    np.testing.assert_array_equal(model_inputs, laid.codes)


def test_start_end_limit_the_positions_and_reverse_complement_averaging_is_kept(tmp_path):
    run = write_tiny_run(tmp_path / "rc", seed=1, rc_average=True)
    model = proformer.load(run, "cpu")
    assert model.rc_average
    sequence = SEQUENCES[1]
    result = ism(model, [sequence], start=5, end=9, standardized=True)
    mutated_at = np.flatnonzero(~np.isnan(result.effects[0]).all(axis=0))
    assert mutated_at.tolist() == [5, 6, 7, 8]
    expected = (model.predict([mutated(sequence, 6, 0)], standardized=True)[0]
                - model.predict([sequence], standardized=True)[0])
    assert result.effects[0, 0, 6] == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="start < end"):
        ism(model, [sequence], start=9, end=5)
    with pytest.raises(ValueError, match="not seen by the model"):
        ism(model, [sequence], start=0, end=2)  # the trimmed flank


def test_multi_target_runs_analyse_the_named_target(tmp_path):
    run = write_tiny_run(tmp_path / "two", seed=2, n_targets=2)
    model = proformer.load(run, "cpu")
    first = ism(model, SEQUENCES[:1])
    second = ism(model, SEQUENCES[:1], target="target1")
    assert second.target == "target1" and not np.allclose(np.nan_to_num(first.effects), np.nan_to_num(second.effects))
    with pytest.raises(ValueError, match="target0, target1"):
        ism(model, SEQUENCES[:1], target="expr")


def test_cli_writes_ism_npz_and_logos_in_training_units(run_dir, tmp_path, capsys):
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">s{i} note\n{s}\n" for i, s in enumerate(SEQUENCES)))
    out = tmp_path / "ism"
    assert main(["ism", "--model", str(run_dir), "--input", str(fasta), "--out", str(out), "--top", "2",
                 "--no-progress"]) == 0  # training units are the default
    saved = np.load(out / "ism.npz")
    assert saved["effects"].shape == (4, 4, max(map(len, SEQUENCES)))
    assert saved["ids"].tolist() == ["s0", "s1", "s2", "s3"] and str(saved["units"]) == "training units"
    assert saved["one_hot"][0, :, 0].tolist() == [1, 0, 0, 0]
    predictions = tmp_path / "p.tsv"
    assert main(["predict", "--model", str(run_dir), "--input", str(fasta), "--out", str(predictions),
                 "--no-progress"]) == 0
    np.testing.assert_allclose(saved["reference"], read_predictions(predictions, column=2), rtol=1e-4)
    logos = sorted((out / "logos").iterdir())
    assert len(logos) == 2 and all(p.stat().st_size > 1000 for p in logos)
    assert "ISM of 4 sequences" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    ("ACGTACGTXCGTACGT\n", "invalid symbol 'X'"),
    ("ACG\n", "not more than the run's flanks"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(run_dir, tmp_path, capsys, content, message):
    source = tmp_path / "bad.txt"
    source.write_text("ACGTACGTACGTACGTA\n" + content)
    out = tmp_path / "ism"
    assert main(["ism", "--model", str(run_dir), "--input", str(source), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{source}:2" in err and message in err, err
    assert not out.exists()


def test_cli_a_run_directory_without_weights_is_named(tmp_path, capsys):
    run = write_tiny_run(tmp_path / "run")
    (run / "weights.safetensors").unlink()
    source = tmp_path / "in.txt"
    source.write_text("ACGTACGTACGTACGTA\n")
    assert main(["ism", "--model", str(run), "--input", str(source), "--out", str(tmp_path / "o"), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "weights.safetensors" in err and "Traceback" not in err


def test_cli_ensemble_effects_are_the_mean_of_the_runs(run_dir, tmp_path):
    """``--model A --model B``: the effects (and references) of the mean of the two runs'
    predictions, i.e. the mean of each run's own ism.npz; NaN where the runs do not see."""
    other = write_tiny_run(tmp_path / "other", seed=4)
    fasta = fasta_of(tmp_path / "in.fa", SEQUENCES)
    single = [cli_ism([run], fasta, tmp_path / f"ism{i}") for i, run in enumerate((run_dir, other))]
    both = cli_ism([run_dir, other], fasta, tmp_path / "both")
    assert both["effects"].shape == single[0]["effects"].shape == (4, 4, max(map(len, SEQUENCES)))
    assert both["ids"].tolist() == ["s0", "s1", "s2", "s3"] and str(both["units"]) == "training units"
    assert not np.allclose(np.nan_to_num(single[0]["effects"]), np.nan_to_num(single[1]["effects"]))  # two models
    mean = (single[0]["effects"] + single[1]["effects"]) / 2
    np.testing.assert_array_equal(np.isnan(both["effects"]), np.isnan(mean))
    np.testing.assert_allclose(both["effects"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both["reference"], (single[0]["reference"] + single[1]["reference"]) / 2,
                               rtol=1e-6, atol=1e-6)


def test_python_api_equals_the_cli(run_dir, tmp_path):
    """``proformer.ism(proformer.load(RUN, "cpu"), sequences)`` is what ``proformer ism --model RUN``
    writes for a FASTA of the same sequences (both in training units by default)."""
    fasta = fasta_of(tmp_path / "in.fa", SEQUENCES)
    saved = cli_ism([run_dir], fasta, tmp_path / "ism")
    model = proformer.load(run_dir, "cpu")
    with pytest.warns(RuntimeWarning, match="longer than the model's window"):
        result = proformer.ism(model, SEQUENCES)
    assert result.units == str(saved["units"]) == "training units" and result.target == str(saved["target"])
    np.testing.assert_array_equal(np.isnan(result.effects), np.isnan(saved["effects"]))
    np.testing.assert_allclose(result.effects, saved["effects"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(result.reference, saved["reference"], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(result.one_hot, saved["one_hot"])


def test_interpretation_commands_use_training_units_unless_standardized(run, tmp_path):
    (tmp_path / "in.fa").write_text("".join(f">{name}\n{seq}\n" for name, seq in zip(IDS[:2], SEQUENCES_PREDICT_TABLES[:2])))
    for flag, units in (([], "training units"), (["--standardized"], "standardised units")):
        out = tmp_path / f"ism{len(flag)}"
        assert cli("ism", "--model", run, "--input", tmp_path / "in.fa", "--out", out, "--top", "0", *flag) == 0
        saved = np.load(out / "ism.npz")
        assert str(saved["units"]).startswith(units)
        expected = proformer.load(run, device="cpu").predict(SEQUENCES_PREDICT_TABLES[:2], standardized=bool(flag))
        np.testing.assert_allclose(saved["reference"], expected, rtol=1e-5, atol=1e-6)


def test_ism_defaults_to_training_units_and_standardized_gives_model_output_effects(case):
    model, t = case.load(), case.target
    target = case.names[t] if len(case.names) > 1 else None
    default = proformer.ism(model, SEQUENCES_UNITS, target=target)
    z = proformer.ism(model, SEQUENCES_UNITS, target=target, standardized=True)
    assert (default.units, z.units) == ("training units", Z_UNITS)
    assert default.target == z.target == case.names[t]
    np.testing.assert_allclose(default.reference, case.units(SEQUENCES_UNITS)[:, t], rtol=1e-6)
    np.testing.assert_allclose(z.reference, case.raw(SEQUENCES_UNITS)[:, t], rtol=1e-6, atol=1e-7)
    # One mutant, predicted through the model directly: its effect in z-scores is the change of the output.
    position = TINY_RUN_HEAD + 5
    base = "A" if SEQUENCES_UNITS[0][position] != "A" else "C"
    expected = case.raw([mutant(SEQUENCES_UNITS[0], position, base)])[0, t] - case.raw(SEQUENCES_UNITS[:1])[0, t]
    assert z.effects[0, "ACGT".index(base), position] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    # Effects scale by the target's std (the mean cancels in a difference); the same positions are NaN.
    np.testing.assert_array_equal(np.isnan(default.effects), np.isnan(z.effects))
    np.testing.assert_allclose(default.effects, z.effects * case.std[t], rtol=1e-5, atol=1e-6)
    assert np.nanmax(np.abs(z.effects)) > 1e-4  # not vacuous


def test_ism_command_defaults_to_training_units(case, tmp_path):
    fasta, t = tmp_path / "in.fa", case.target
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQUENCES_UNITS)))
    saved = {}
    for flag in ([], ["--standardized"]):
        out = tmp_path / f"ism{len(flag)}"
        assert cli("ism", *case.cli_models(), *case.cli_target(), "--input", fasta, "--out", out, "--top", "0",
                   "--device", "cpu", *flag) == 0
        saved[bool(flag)] = np.load(out / "ism.npz")
    assert str(saved[False]["units"]) == "training units" and str(saved[True]["units"]) == Z_UNITS
    assert str(saved[False]["target"]) == str(saved[True]["target"]) == case.names[t]
    np.testing.assert_allclose(saved[False]["reference"], case.units(SEQUENCES_UNITS)[:, t], rtol=1e-6)
    np.testing.assert_allclose(saved[True]["reference"], case.raw(SEQUENCES_UNITS)[:, t], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(saved[False]["effects"], saved[True]["effects"] * case.std[t], rtol=1e-5, atol=1e-6)


def _npz_members(folder) -> dict[str, bytes]:
    """Every array file of every ``.npz`` in ``folder``, as bytes: what must match. (The zip
    entries' dates are the time of writing, numpy's choice, so the archives' own bytes differ.)"""
    import zipfile

    members = {}
    for path in sorted(folder.glob("*.npz")):
        with zipfile.ZipFile(path) as archive:
            members.update({f"{path.name}/{name}": archive.read(name) for name in archive.namelist()})
    return members


def test_devices_2_writes_the_arrays_of_one_process(tmp_path):
    """`ism` and `attribute --method deep_lift_shap --hypothetical` with `--devices 2` (CPU, gloo):
    each process computes its share, rank 0 writes the folder, every array byte for byte the one
    process's (ISM: several slices of mutants split unevenly; DeepLIFT: each sequence's shuffles
    drawn from its own seed and row, whichever process draws them; the TF-MoDISco crops too)."""

    rng = np.random.default_rng(6)
    sequences = ["".join(rng.choice(list("ACGTN"), int(rng.integers(8, 30)))) for _ in range(20)]
    fasta_of(tmp_path / "in.fa", sequences)
    run = write_tiny_run(tmp_path / "run", seed=4)
    script = cli_script(tmp_path)
    extra = {"ism": ["--top", "0"], "attribute": ["--method", "deep_lift_shap", "--hypothetical", "--shuffles", "3"]}

    def command(name, devices):
        return [name, "--model", str(run), "--input", str(tmp_path / "in.fa"), "--out", str(tmp_path / f"{name}.{devices}"),
                "--batch-size", "8", "--device", "cpu", "--no-progress", "--devices", str(devices), *extra[name]]

    def one_process():
        for name in extra:
            with pytest.warns(RuntimeWarning, match="longer than the model's window"):
                assert main(command(name, 1)) == 0

    done = beside_processes(script, {name: command(name, 2) for name in extra}, one_process)
    for name, (status, stdout, stderr) in done.items():
        assert status == 0, stderr[-3000:]
        assert stdout.count(f"{name}.2:") == 1 and stderr.count("longer than the model's window") == 1  # rank 0
        one, both = _npz_members(tmp_path / f"{name}.1"), _npz_members(tmp_path / f"{name}.2")
        assert one == both and len(one) >= {"ism": 7, "attribute": 12}[name]
        assert sorted(p.name for p in (tmp_path / f"{name}.2").iterdir()) == sorted(p.name for p in (tmp_path / f"{name}.1").iterdir())
    assert np.isfinite(np.load(tmp_path / "attribute.2" / "modisco_hyp.npz")["arr_0"]).all()
