"""Tests of :mod:`proformer.inference`."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from helpers import (
    SEQUENCES_UNITS,
    cli,
    one_line_error,
    random_dna,
    random_dna_training_ideas,
    rc,
    read_predictions,
    write_tiny_run,
)

import proformer
from proformer.config import load_run_config
from proformer.inference import Ensemble, Run
from proformer.io.run import (
    RunInfo,
    TargetInfo,
    read_run_info,
    read_weights,
    write_run_model,
)
from proformer.model import ModelConfig, Proformer, swap_strands
from proformer.predict import predict
from proformer.sequence import (
    DREAM_HEAD,
    DREAM_TAIL,
    Layout,
    encode_padded,
)
from proformer.train import train

RNG = np.random.default_rng(23)


N = 30


SEQUENCES = random_dna(RNG, N, 22)  # 2 + 19 + 1 nt: inside every member's window


MEASURED = RNG.normal(1.0, 2.0, size=N)


def write_run(path, seed: int, *, layout: Layout | None = None, **info_options):
    """A tiny run (helpers.write_tiny_run), optionally with other flanks (the same window)."""
    write_tiny_run(path, seed=seed, **info_options)
    if layout is not None:
        info = dataclasses.replace(read_run_info(path), layout=layout)
        write_run_model(path, read_weights(path), info)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three one-target runs: plain, with rc_average, with flanks 1 + 2 instead of 2 + 1."""
    root = tmp_path_factory.mktemp("ensemble")
    return [write_run(root / "a", 1), write_run(root / "b", 2, rc_average=True),
            write_run(root / "c", 3, layout=Layout(head=1, tail=2, length=20, pad="n"))]


@pytest.fixture(scope="module")
def runs2(tmp_path_factory):
    """Two two-target runs (targets target0, target1)."""
    root = tmp_path_factory.mktemp("ensemble2")
    return [write_run(root / "a", 4, n_targets=2), write_run(root / "b", 5, n_targets=2)]



def members_mean(runs, sequences=SEQUENCES, standardized: bool = False) -> np.ndarray:
    """What an ensemble must give: the mean of each run's own prediction."""
    return np.mean([proformer.load(run, "cpu").predict(sequences, standardized=standardized) for run in runs], axis=0)


def read_tsv(path) -> tuple[list[str], np.ndarray]:
    header, *rows = path.read_text().splitlines()
    return header.split("\t"), np.array([[float(v) for v in row.split("\t")[1:]] for row in rows])



def predict_codes(model: Proformer, codes: np.ndarray, rc_average: bool = False) -> np.ndarray:
    """The model's own output ``(n,)`` for model codes, as a :class:`proformer.inference.Run` predicts them."""
    info = RunInfo(model=model.config, layout=Layout(head=0, tail=0, length=model.config.length),
                   target=TargetInfo(names=["y"], mean=[0.0], std=[1.0], standardized=True))
    return Run(model, info, rc_average=rc_average).predict_codes(codes, standardized=True)[:, 0]


def test_an_ensemble_predicts_the_mean_of_its_members_each_in_its_own_way(runs, runs2):
    ensemble = proformer.load(runs, "cpu")
    assert isinstance(ensemble, Ensemble) and ensemble.target_names == ["expr"]
    assert ensemble.n_targets == 1
    values = ensemble.predict(SEQUENCES)
    assert values.shape == (N,) and values.dtype == np.float64
    np.testing.assert_array_equal(values, ensemble.predict(SEQUENCES, standardized=False))  # training units
    np.testing.assert_allclose(values, members_mean(runs), rtol=1e-12)
    # The members differ (own weights, rc_average, flanks): the mean is not any one of them.
    assert all(not np.allclose(values, proformer.load(run, "cpu").predict(SEQUENCES)) for run in runs)
    # Several targets: averaged column by column.
    two = proformer.load(tuple(runs2), "cpu").predict(SEQUENCES)
    assert two.shape == (N, 2)
    np.testing.assert_allclose(two, members_mean(runs2), rtol=1e-12)


def test_a_list_of_one_run_predicts_exactly_that_run(runs):
    one = proformer.load([runs[0]], "cpu")
    assert isinstance(one, Ensemble) and isinstance(proformer.load(runs[0], "cpu"), Run)
    np.testing.assert_array_equal(one.predict(SEQUENCES), proformer.load(runs[0], "cpu").predict(SEQUENCES))


def test_z_scores_average_only_when_the_runs_share_their_target_statistics(runs, tmp_path):
    # The tiny runs all have mean 1 and std 2: their z-scores are in one unit.
    ensemble = proformer.load(runs[:2], "cpu")
    np.testing.assert_allclose(ensemble.predict(SEQUENCES, standardized=True), members_mean(runs[:2], standardized=True),
                               rtol=1e-12)
    # A run standardised by other statistics (another fold's rows) is refused, naming both runs.
    other = write_run(tmp_path / "other", 6)
    values = json.loads((other / "config.json").read_text())
    values["target"]["mean"] = [1.5]
    (other / "config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match="same target statistics") as error:
        proformer.load([runs[0], other], "cpu").predict(SEQUENCES[:2], standardized=True)
    assert str(runs[0]) in str(error.value) and str(other) in str(error.value)
    # In training units the same two runs average fine.
    proformer.load([runs[0], other], "cpu").predict(SEQUENCES[:2])


def test_a_sequence_longer_than_a_window_is_counted_once(runs, tmp_path, capsys):
    long = "ACGT" * 10  # 40 nt: longer than every member's 20-position window
    ensemble = proformer.load(runs, "cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = ensemble.predict([SEQUENCES[0], long])
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        expected = members_mean(runs, [SEQUENCES[0], long])  # each member cuts it to its own centre
    assert len(messages) == 1 and messages[0].startswith("1 sequence(s) are longer than the window of at least one")
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    # predict: one row cut, one stderr line naming each run's window (their flanks differ).
    (tmp_path / "in.txt").write_text(f"{SEQUENCES[0]}\n{long}\n")
    capsys.readouterr()
    result = predict(runs, tmp_path / "in.txt", tmp_path / "out.tsv", progress=False)
    assert result["too_long"] == 1 and result["runs"] == 3
    one_line_error(capsys.readouterr().err, "1 sequence(s)", f"{runs[2]}: 20 nt after trimming 1 + 2 nt", "longest 40 nt")


def test_a_run_given_twice_is_refused(runs):
    with pytest.raises(ValueError, match="given twice"):
        proformer.load([runs[0], runs[1], runs[0]], "cpu")


def test_cli_predict_with_several_models_writes_the_mean(runs, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("\n".join(SEQUENCES) + "\n")
    out = tmp_path / "mean.tsv"
    assert cli("predict", "--model", runs[0], "--model", runs[1], "--model", runs[2], "--input", tmp_path / "in.txt",
               "--out", out) == 0
    assert "the mean of 3 runs" in capsys.readouterr().out
    header, values = read_tsv(out)
    assert header == ["sequence", "expr"]
    # The file holds 6 significant digits.
    np.testing.assert_allclose(values[:, 0], members_mean(runs), rtol=1e-5)
    # One --model followed by several directories (a shell glob) is the same ensemble.
    assert cli("predict", "--model", *runs, "--input", tmp_path / "in.txt", "--out", tmp_path / "glob.tsv") == 0
    assert (tmp_path / "glob.tsv").read_bytes() == out.read_bytes()


def test_one_model_writes_what_it_always_wrote(runs, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("\n".join(SEQUENCES) + "\n")
    capsys.readouterr()
    assert cli("predict", "--model", runs[1], "--input", tmp_path / "in.txt", "--out", tmp_path / "one.tsv") == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'one.tsv'} (tsv, {N} input rows, training units)\n"
    result = predict(runs[1], tmp_path / "in.txt", tmp_path / "api.tsv", progress=False)
    assert result["runs"] == 1
    assert (tmp_path / "one.tsv").read_bytes() == (tmp_path / "api.tsv").read_bytes()
    lines = (tmp_path / "one.tsv").read_text().splitlines()
    expected = proformer.load(runs[1], "cpu").predict(SEQUENCES)
    assert lines == ["sequence\texpr"] + [f"{s}\t{v:.6g}" for s, v in zip(SEQUENCES, expected)]


def test_runs_with_other_targets_are_one_line_naming_both_runs_and_targets(runs, runs2, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("\n".join(SEQUENCES) + "\n")
    capsys.readouterr()
    assert cli("predict", "--model", runs[0], "--model", runs2[0], "--input", tmp_path / "in.txt",
               "--out", tmp_path / "x.tsv") == 2
    one_line_error(capsys.readouterr().err, str(runs[0]), "1 target(s) (expr)", str(runs2[0]), "2 (target0, target1)")
    assert not (tmp_path / "x.tsv").exists()
    # Same number of targets, other names (or order): refused as well.
    swapped = write_run(tmp_path / "swapped", 7, n_targets=2)
    values = json.loads((swapped / "config.json").read_text())
    values["target"]["names"] = ["target1", "target0"]
    (swapped / "config.json").write_text(json.dumps(values))
    assert cli("evaluate", "--model", runs2[0], swapped, "--data", tmp_path / "in.txt") == 2
    one_line_error(capsys.readouterr().err, str(runs2[0]), "(target0, target1)", str(swapped), "(target1, target0)")


def test_cli_standardized_ensemble_of_fold_like_runs_is_refused(runs, tmp_path, capsys):
    other = write_run(tmp_path / "fold", 8)
    info = read_run_info(other)
    info = dataclasses.replace(info, target=dataclasses.replace(info.target, std=[2.5]))
    (other / "config.json").write_text(json.dumps(RunInfo.to_dict(info)))
    (tmp_path / "in.txt").write_text("\n".join(SEQUENCES) + "\n")
    capsys.readouterr()
    assert cli("predict", "--model", runs[0], other, "--input", tmp_path / "in.txt", "--out", tmp_path / "z.tsv",
               "--standardized") == 2
    one_line_error(capsys.readouterr().err, str(runs[0]), str(other), "drop --standardized")


def test_evaluate_with_two_models_scores_the_averaged_prediction(runs, tmp_path, capsys):
    table = tmp_path / "labelled.tsv"
    table.write_text("sequence\tvalue\n" + "".join(f"{s}\t{y:.6f}\n" for s, y in zip(SEQUENCES, MEASURED)))
    capsys.readouterr()
    assert cli("evaluate", "--model", runs[0], "--model", runs[1], "--data", table, "--seq-col", "sequence",
               "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == [str(runs[0]), str(runs[1])] and result["rows"] == N
    predicted, measured = members_mean(runs[:2]), np.round(MEASURED, 6)
    metrics = result["targets"]["expr"]
    assert metrics["pearson"] == pytest.approx(np.corrcoef(predicted, measured)[0, 1], rel=1e-9)
    assert metrics["mse"] == pytest.approx(np.mean((measured - predicted) ** 2), rel=1e-9)
    # The table names the ensemble.
    assert cli("evaluate", "--model", runs[0], runs[1], "--data", table, "--seq-col", "sequence") == 0
    assert capsys.readouterr().out.startswith(f"the mean of 2 runs ({runs[0]}, {runs[1]}) on {table}:")


def test_rc_averaging_gives_a_sequence_and_its_reverse_complement_one_prediction(tmp_path, dream_data):
    torch.manual_seed(0)
    model = Proformer(ModelConfig(kmer=3, dim=16, heads=2, blocks=1, readout=4, length=100)).eval()
    codes, lengths = encode_padded([random_dna_training_ideas(80) for _ in range(6)])
    forward = Layout(head=0, tail=0, length=100).apply(codes, lengths)
    reverse = swap_strands(torch.from_numpy(forward)).numpy()
    plain = predict_codes(model, forward), predict_codes(model, reverse)
    assert np.abs(plain[0] - plain[1]).max() > 1e-4  # the model itself is not symmetric
    averaged = predict_codes(model, forward, rc_average=True), predict_codes(model, reverse, rc_average=True)
    np.testing.assert_allclose(averaged[0], averaged[1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(averaged[0], (plain[0] + plain[1]) / 2, atol=1e-6)

    # Through predict(): sequences (even padding, so the layouts mirror) and their reverse complements.
    config = load_run_config(preset="grid", overrides=[f"data.path={dream_data}", "dim=16", "heads=2", "readout=4",
                                                      "epochs=1", "batch_size=64", "data.rc_average=true"])
    train(config, tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["rc_average"] is True
    sequences = [DREAM_HEAD + random_dna_training_ideas(80) + DREAM_TAIL for _ in range(5)]
    cores = [s[17:-13] for s in sequences]
    (tmp_path / "in.txt").write_text("".join(f"{DREAM_HEAD}{c}{DREAM_TAIL}\n{DREAM_HEAD}{rc(c)}{DREAM_TAIL}\n"
                                             for c in cores))
    predict(tmp_path / "run", tmp_path / "in.txt", tmp_path / "out.tsv", progress=False)
    values = read_predictions(tmp_path / "out.tsv")
    np.testing.assert_allclose(values[0::2], values[1::2], atol=1e-5)
    predict(tmp_path / "run", tmp_path / "in.txt", tmp_path / "plain.tsv", progress=False, rc_average=False)
    plain = read_predictions(tmp_path / "plain.tsv")
    assert np.abs(plain[0::2] - plain[1::2]).max() > 1e-5


def test_predict_defaults_to_training_units_and_standardized_is_the_model_output(case):
    model = case.load()
    assert isinstance(model, Ensemble if case.name == "ensemble" else Run)
    raw, units = case.raw(SEQUENCES_UNITS), case.units(SEQUENCES_UNITS)
    default, z = model.predict(SEQUENCES_UNITS), model.predict(SEQUENCES_UNITS, standardized=True)
    if case.name == "one":  # one target: (n,)
        assert default.shape == z.shape == (len(SEQUENCES_UNITS),)
        default, z = default[:, None], z[:, None]
    assert default.dtype == z.dtype == np.float64
    np.testing.assert_allclose(default, units, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(SEQUENCES_UNITS, standardized=False), model.predict(SEQUENCES_UNITS))
    if case.name == "ensemble":
        np.testing.assert_allclose(z, raw, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_array_equal(z, raw)  # exactly the model's own output
        run, codes = model, model.lay_out(SEQUENCES_UNITS).codes
        np.testing.assert_array_equal(run.predict_codes(codes, standardized=True), raw)
        np.testing.assert_allclose(run.predict_codes(codes), units, rtol=1e-12)
    np.testing.assert_allclose(z, (default - case.mean) / case.std, rtol=1e-9, atol=1e-12)
    assert not np.allclose(default, z, atol=1e-2)  # the two units really differ
