"""Tests of :mod:`proformer.interpret.attribute`."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from helpers import (
    SEQUENCES_UNITS,
    TINY_RUN_HEAD,
    TINY_RUN_LENGTH,
    Z_UNITS,
    attribute_module,
    cli,
    planted_motif_model,
    random_dna,
    tiny_run_info,
    usage_error,
    write_tiny_run,
)

import proformer
from proformer.cli import main
from proformer.inference import Run
from proformer.interpret.attribute import attribute, run_attribute, write_attributions
from proformer.interpret.scorer import Scorer
from proformer.io.errors import InputError
from proformer.sequence import one_hot


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_tiny_run(tmp_path_factory.mktemp("attribute") / "run", rc_average=True)


@pytest.fixture(scope="module")
def model(run_dir):
    return proformer.load(run_dir, "cpu")


def planted_sequences(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """23-nt sequences with exactly one GATA, inside the positions the tiny layout shows (2..21)."""
    rng = np.random.default_rng(seed)
    sequences, starts = [], []
    while len(sequences) < n:
        start = int(rng.integers(TINY_RUN_HEAD + 1, TINY_RUN_HEAD + TINY_RUN_LENGTH - 4))
        sequence = random_dna(rng, 1, 23)[0]
        sequence = sequence[:start] + "GATA" + sequence[start + 4 :]
        if sequence.count("GATA") == 1:
            sequences.append(sequence)
            starts.append(start)
    return sequences, starts


class LinearOneHot(torch.nn.Module):
    """f(x) = sum of w * one-hot: DeepLIFT is exact on it, whatever captum's rules."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(4, TINY_RUN_LENGTH, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor, singleton=None) -> torch.Tensor:
        if not x.is_floating_point():  # model codes: the forward half, N as an all-zero column
            x = torch.nn.functional.one_hot(x[:, :TINY_RUN_LENGTH].long().clamp(max=4), 5)[..., :4].permute(0, 2, 1)
        return (x.float() * self.weight).sum(dim=(1, 2))


@pytest.mark.usefixtures("one_thread")
def test_integrated_gradients_sum_to_the_prediction_minus_the_all_n_baseline(model):
    # Ragged: a short row, an exact fit, one with an N and one longer than the window (cut).
    rng = np.random.default_rng(0)
    sequences = [random_dna(rng, 1, length)[0] for length in (12, 23, 30)] + ["ACGTNACGTACGGATTACAGG"]
    result = attribute(model, sequences, "integrated_gradients", steps=100, standardized=True)
    total = np.nansum(result.attributions.astype(np.float64), axis=(1, 2))
    expected = (model.predict(sequences, standardized=True)
                - model.predict(["N" * len(s) for s in sequences], standardized=True))
    # Gauss-Legendre error on this kinked (ReLU) integrand: ~4e-4 at 100 steps, vs |expected| ~0.1.
    np.testing.assert_allclose(total, expected, atol=1e-3)
    assert np.abs(expected).max() > 0.05  # the check is not 0 == 0


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "deep_lift_shap", "ism"])
def test_largest_attributions_are_the_planted_motif(method):
    model = Run(planted_motif_model(), tiny_run_info())
    sequences, starts = planted_sequences(6)
    result = attribute(model, sequences, method, n_shuffles=10)
    per_position = np.nan_to_num(result.attributions.sum(axis=1), nan=-np.inf)
    for row, start in enumerate(starts):
        top = sorted(np.argsort(-per_position[row], kind="stable")[:4].tolist())
        assert top == list(range(start, start + 4)), (method, sequences[row], per_position[row].round(2))
        assert per_position[row, start : start + 4].min() > 0


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "deep_lift_shap"])
def test_batch_size_does_not_change_the_result(run_dir, method):
    sequences = random_dna(np.random.default_rng(14), 5, 23) + random_dna(np.random.default_rng(15), 2, 19)
    one, many = (attribute(proformer.load(run_dir, "cpu", batch_size=size), sequences, method, n_shuffles=4,
                           steps=10, standardized=True) for size in (3, 256))
    np.testing.assert_allclose(one.attributions, many.attributions, atol=1e-6)


@pytest.mark.usefixtures("one_thread")
def test_unseen_positions_are_nan_for_ragged_input(model):
    # Flanks of 2 + 1; 20 positions per strand. Length 30 keeps 27 after the flanks and the
    # window cuts 3 more on the left and 4 on the right: seen 5..24.
    sequences = random_dna(np.random.default_rng(2), 1, 10) + random_dna(np.random.default_rng(3), 1, 23) \
        + random_dna(np.random.default_rng(4), 1, 30)
    seen = {0: range(2, 9), 1: range(2, 22), 2: range(5, 25)}
    for method in ("saliency", "ism"):
        result = attribute(model, sequences, method, hypothetical=True)
        for array in (result.attributions, result.hypothetical):
            assert array.shape == (3, 4, 30) and array.dtype == np.float32
            for row, positions in seen.items():
                finite = np.isfinite(array[row]).all(axis=0)
                assert np.flatnonzero(finite).tolist() == list(positions), (method, row)
                assert np.isnan(array[row][:, ~finite]).all()
        assert result.one_hot.shape == (3, 4, 30) and result.lengths.tolist() == [10, 23, 30]
        assert result.one_hot[0, :, 10:].sum() == 0 and (result.one_hot[2].sum(axis=0) == 1).all()


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", ["deep_lift_shap", "ism"])
def test_attributions_are_hypothetical_times_one_hot(model, method):
    sequences = random_dna(np.random.default_rng(5), 3, 23) + ["ACGTNACGTACGGATTACAGG"]
    result = attribute(model, sequences, method, hypothetical=True, n_shuffles=8, standardized=True)
    np.testing.assert_allclose(result.attributions, result.hypothetical * result.one_hot, atol=1e-6)
    seen = result.seen
    assert (np.abs(result.hypothetical).sum(axis=1)[seen] > 0).mean() > 0.9  # not trivially zero


@pytest.mark.usefixtures("one_thread")
def test_gradient_hypothetical_is_the_centred_gradient(model):
    sequences = random_dna(np.random.default_rng(6), 3, 23)
    saliency = attribute(model, sequences, "saliency", hypothetical=True, standardized=True)
    centred = saliency.attributions - saliency.attributions.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(saliency.hypothetical, centred, atol=1e-6)
    np.testing.assert_allclose(np.nansum(saliency.hypothetical, axis=1), 0, atol=1e-6)
    # input_x_gradient is captum's InputXGradient, moved from the window to input positions.
    from captum.attr import InputXGradient

    x = torch.from_numpy(saliency.one_hot[:, :, TINY_RUN_HEAD : TINY_RUN_HEAD + TINY_RUN_LENGTH].copy())
    one_hot_model = Scorer(model, standardized=True).one_hot_model()
    captum = InputXGradient(one_hot_model).attribute(x.requires_grad_()).detach().numpy()
    ixg = attribute(model, sequences, "input_x_gradient", hypothetical=True, standardized=True)
    np.testing.assert_allclose(ixg.attributions[:, :, TINY_RUN_HEAD : TINY_RUN_HEAD + TINY_RUN_LENGTH], captum, atol=1e-6)
    np.testing.assert_allclose(ixg.hypothetical, saliency.hypothetical, atol=1e-6)


@pytest.mark.usefixtures("one_thread")
def test_deep_lift_shap_sums_to_the_prediction_minus_the_mean_reference_on_a_linear_model():
    # Without N: an N's own DeepLIFT contribution (-m . r) has no base to go to (the module says so).
    model = Run(LinearOneHot().eval(), tiny_run_info())
    sequences = random_dna(np.random.default_rng(12), 3, 23) + random_dna(np.random.default_rng(13), 1, 17)
    # z-scores: the model's own output, which reference_prediction below computes from its weights
    result = attribute(model, sequences, "deep_lift_shap", hypothetical=True, n_shuffles=6, seed=3, standardized=True)
    laid = model.lay_out(sequences)
    forward, seen = laid.codes[:, :TINY_RUN_LENGTH], np.zeros((4, TINY_RUN_LENGTH), dtype=bool)
    rows, positions = np.nonzero(laid.window >= 0)
    seen[rows, laid.window[rows, positions]] = True
    references = attribute_module.shuffled_references(forward, seen, 6, seed=3)
    weight = model.model.weight.detach().numpy()
    reference_prediction = np.einsum("bl,nsbl->n", weight, one_hot(references)) / 6
    expected = model.predict(sequences, standardized=True) - reference_prediction
    np.testing.assert_allclose(np.nansum(result.attributions, axis=(1, 2)), expected, atol=1e-4)
    assert np.abs(expected).max() > 0.5


@pytest.mark.usefixtures("one_thread")
def test_deep_lift_multipliers_are_the_gradient_on_this_architecture(model):
    # The module says captum has no DeepLIFT rule for any Proformer nonlinearity, so the
    # multipliers are the gradient at the input: then DeepLIFT's hypothetical contributions,
    # m_b - m . r, centred over the bases, are the centred gradient whatever the references.
    sequences = random_dna(np.random.default_rng(7), 3, 23)
    deep_lift = attribute(model, sequences, "deep_lift_shap", hypothetical=True, n_shuffles=4, standardized=True)
    saliency = attribute(model, sequences, "saliency", hypothetical=True, standardized=True)
    centred = deep_lift.hypothetical - deep_lift.hypothetical.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(centred, saliency.hypothetical, atol=1e-5)


@pytest.mark.usefixtures("one_thread")
def test_modisco_export_is_cropped_to_seen_positions(model, tmp_path):
    # Seen regions of 20, 20 and 19 positions (lengths 23, 30, 22): one even window of 18.
    sequences = random_dna(np.random.default_rng(8), 1, 23) + random_dna(np.random.default_rng(9), 1, 30) \
        + random_dna(np.random.default_rng(10), 1, 22)
    result = attribute(model, sequences, "saliency", hypothetical=True)
    written = write_attributions(result, tmp_path / "out")
    assert written["modisco_width"] == 18
    ohe = np.load(written["modisco_ohe_npz"])["arr_0"]
    hyp = np.load(written["modisco_hyp_npz"])["arr_0"]
    assert ohe.shape == hyp.shape == (3, 4, 18) and ohe.dtype == hyp.dtype == np.float32
    assert (ohe.sum(axis=1) == 1).all() and np.isfinite(hyp).all()  # no padding, nothing unseen

    saved = np.load(written["npz"])
    starts = saved["modisco_start"]
    assert starts.tolist() == [3, 6, 2]  # the middle 18 of seen 2..21, 5..24 and 2..20
    for row, start in enumerate(starts):
        np.testing.assert_array_equal(ohe[row], result.one_hot[row, :, start : start + 18])
        np.testing.assert_array_equal(hyp[row], result.hypothetical[row, :, start : start + 18])
    assert saved["attributions"].shape == (3, 4, 30) and np.isnan(saved["attributions"][2, :, 22:]).all()
    assert saved["ids"].tolist() == ["0", "1", "2"] and str(saved["method"]) == "saliency"


@pytest.mark.usefixtures("one_thread")
def test_run_attribute_writes_the_arrays(run_dir, tmp_path):
    sequences = random_dna(np.random.default_rng(11), 3, 23)
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">seq{i}\n{s}\n" for i, s in enumerate(sequences)))
    summary = run_attribute(run_dir, fasta, tmp_path / "out", "deep_lift_shap", hypothetical=True, device="cpu",
                            n_shuffles=4, progress=False)
    assert summary["sequences"] == 3 and summary["method"] == "deep_lift_shap"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["attributions.npz", "modisco_hyp.npz",
                                                                    "modisco_ohe.npz"]
    assert np.load(summary["npz"])["ids"].tolist() == ["seq0", "seq1", "seq2"]


@pytest.mark.usefixtures("one_thread")
def test_cli_ensemble_saliency_is_the_mean_of_the_runs(run_dir, tmp_path):
    """``proformer attribute --model A --model B``: every array in input coordinates, with the
    saliency of the mean prediction, i.e. the mean of the two runs' own saliency."""
    other = write_tiny_run(tmp_path / "other", seed=1, rc_average=True)
    sequences = random_dna(np.random.default_rng(16), 2, 23) + random_dna(np.random.default_rng(17), 1, 30)
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">seq{i}\n{s}\n" for i, s in enumerate(sequences)))

    def cli(runs, out):
        models = [word for run in runs for word in ("--model", str(run))]
        assert main(["attribute", *models, "--input", str(fasta), "--out", str(tmp_path / out), "--method",
                     "saliency", "--no-progress"]) == 0
        with np.load(tmp_path / out / "attributions.npz") as saved:
            return {key: saved[key] for key in saved.files}

    single = [cli([run], f"single{i}") for i, run in enumerate((run_dir, other))]
    both = cli([run_dir, other], "both")
    assert both["attributions"].shape == both["one_hot"].shape == (3, 4, 30)
    assert both["ids"].tolist() == ["seq0", "seq1", "seq2"] and both["lengths"].tolist() == [23, 23, 30]
    assert str(both["method"]) == "saliency" and str(both["units"]) == "training units"
    assert not np.allclose(np.nan_to_num(single[0]["attributions"]), np.nan_to_num(single[1]["attributions"]))
    mean = (single[0]["attributions"] + single[1]["attributions"]) / 2
    np.testing.assert_array_equal(np.isnan(both["attributions"]), np.isnan(mean))
    np.testing.assert_allclose(both["attributions"], mean, rtol=1e-5, atol=1e-6)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method, hypothetical, text, error, match", [
    ("shap", False, "ACGTACGTACGTACGTACGTACG", ValueError, "saliency, input_x_gradient, integrated_gradients"),
    ("integrated_gradients", True, "ACGTACGTACGTACGTACGTACG", ValueError, "no hypothetical contributions"),
    ("saliency", False, "ACGTACGTACGTACGTACGTACG\nACGTACGTACXTACGTACGTACG", InputError, r"in\.txt:2"),
])
def test_bad_requests_fail_clearly_and_write_nothing(run_dir, tmp_path, method, hypothetical, text, error, match):
    path = tmp_path / "in.txt"
    path.write_text(text + "\n")
    with pytest.raises(error, match=match):
        run_attribute(run_dir, path, tmp_path / "out", method, hypothetical=hypothetical, device="cpu", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("one_thread")
def test_modisco_missing_says_how_to_install_and_writes_nothing(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(attribute_module.shutil, "which", lambda name: None)
    path = tmp_path / "in.txt"
    path.write_text("ACGTACGTACGTACGTACGTACG\n")
    with pytest.raises(ImportError, match="pip install modisco-lite"):
        run_attribute(run_dir, path, tmp_path / "out", "saliency", modisco=True, device="cpu", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("one_thread")
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("modisco") is None, reason="modisco-lite is not installed (pip install modisco-lite)")
def test_modisco_reads_the_export(tmp_path):
    # modisco needs windows wider than its seqlets (20 + flanks) and signed, dense scores: a random
    # Proformer with a 100-position window. About 25 s, most of it numba compiling modisco.
    info = tiny_run_info()
    info = dataclasses.replace(info, model=dataclasses.replace(info.model, length=100),
                               layout=dataclasses.replace(info.layout, length=100))
    torch.manual_seed(0)
    from proformer.model import Proformer

    model = Run(Proformer(info.model).eval(), info)
    sequences = random_dna(np.random.default_rng(0), 300, 103)
    result = attribute(model, sequences, "saliency", hypothetical=True)
    written = write_attributions(result, tmp_path / "out", modisco=True, max_seqlets=500)
    h5py = pytest.importorskip("h5py", reason="h5py (a modisco-lite dependency) is not importable here")

    with h5py.File(written["modisco_h5"]) as h5:
        assert int(h5.attrs["window_size"]) == written["modisco_width"] == 100


def test_attribute_steps_one_million_is_one_line_naming_the_flag_and_the_limit(tiny_run_dir, sequences_file, tmp_path,
                                                                              capsys):
    """The finding: ``attribute --steps 1000000`` died with a traceback (captum asked numpy for a
    7 TiB Gauss-Legendre matrix). Old code: no SystemExit (a MemoryError from numpy)."""
    err = usage_error(capsys, ["attribute", "--model", tiny_run_dir, "--input", sequences_file, "--out", tmp_path / "out",
                               "--method", "integrated_gradients", "--steps", "1000000", "--no-progress"])
    assert "--steps" in err and "1000000" in err and "1,000" in err and "limit" in err
    assert not (tmp_path / "out").exists()


def test_saliency_scales_by_the_target_std(case, tmp_path):
    pytest.importorskip("captum")
    model, t = case.load(), case.target
    target = case.names[t] if len(case.names) > 1 else None
    default = proformer.attribute(model, SEQUENCES_UNITS, "saliency", target=target)
    z = proformer.attribute(model, SEQUENCES_UNITS, "saliency", target=target, standardized=True)
    assert (default.units, z.units) == ("training units", Z_UNITS) and default.target == case.names[t]
    # d(y * std + mean)/dx = std * dz/dx; unseen positions are NaN in both.
    np.testing.assert_array_equal(np.isnan(default.attributions), np.isnan(z.attributions))
    np.testing.assert_allclose(default.attributions, z.attributions * case.std[t], rtol=1e-5, atol=1e-7)
    assert np.nanmax(np.abs(z.attributions)) > 1e-4
    # The command writes the same arrays.
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQUENCES_UNITS)))
    for flag, result in (([], default), (["--standardized"], z)):
        out = tmp_path / f"attr{len(flag)}"
        assert cli("attribute", *case.cli_models(), *case.cli_target(), "--input", fasta, "--method", "saliency",
                   "--device", "cpu", "--out", out, *flag) == 0
        saved = np.load(out / "attributions.npz")
        assert str(saved["units"]) == result.units
        np.testing.assert_allclose(saved["attributions"], result.attributions, rtol=1e-6, atol=1e-8)
