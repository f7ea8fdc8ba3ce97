"""One units flag everywhere: every public function and command that returns predictions gives
training units by default, and ``standardized=True`` / ``--standardized`` gives the z-scores the
model was trained on, i.e. exactly the model's own output.

Three models, each built from helpers.write_tiny_run (a random 20-position Proformer, flanks
2 + 1) with target statistics far from 0 and 1, so that a missing or doubled conversion shows:

- ``one``: one target (mean 5, std 0.25), averaging each sequence with its reverse complement;
- ``two``: two targets with different statistics (means -3 and 7, stds 0.5 and 4), analysed on
  the second target, so the wrong column's statistics show too;
- ``ensemble``: two two-target runs with the same statistics (an ensemble's z-scores exist only
  then), whose z-scores are the mean of the members' own outputs.

The expected numbers come from the models themselves: ``Run.model_output`` of the laid-out
sequences (the raw output, the z-scores) and ``z * std + mean`` (training units). Everything runs
in-process on a handful of 22-nt sequences, so the module takes a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_RUN_HEAD, random_dna, write_tiny_run

import proformer
from proformer.cli import main
from proformer.inference import Ensemble, Run, units_text
from proformer.io.inputs import read_input
from proformer.predict import predict

SEQUENCES = random_dna(np.random.default_rng(11), 4, 22)  # 2 + 19 + 1 nt: inside the 20-position window
Z_UNITS = units_text(True)


@dataclass
class Case:
    """A model under test: its run directories and what the units conversion must use."""

    name: str
    dirs: list[Path]
    mean: np.ndarray  # (n_targets,)
    std: np.ndarray
    target: int  # the target the interpretation checks analyse
    names: list[str]

    @property
    def model_arg(self):
        """What ``proformer.load`` and the run_* functions take: a path, or a list (an ensemble)."""
        return self.dirs[0] if self.name != "ensemble" else list(self.dirs)

    def cli_models(self) -> list[str]:
        return ["--model", *map(str, self.dirs)]

    def cli_target(self) -> list[str]:
        return ["--target-name", self.names[self.target]] if len(self.names) > 1 else []

    def load(self):
        return proformer.load(self.model_arg, "cpu")

    def raw(self, sequences) -> np.ndarray:
        """float64 ``(n, n_targets)``: the model's own output (the mean of the members' for an
        ensemble), from ``Run.model_output`` of the sequences laid out by each run."""
        outputs = []
        for directory in self.dirs:
            run = proformer.load(directory, "cpu")
            outputs.append(run.model_output(run.lay_out(sequences).codes).double().numpy())
        return np.mean(outputs, axis=0)

    def units(self, sequences) -> np.ndarray:
        """float64 ``(n, n_targets)``: the same in training units."""
        return self.raw(sequences) * self.std + self.mean


@pytest.fixture(scope="module", params=["one", "two", "ensemble"])
def case(request, tmp_path_factory) -> Case:
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "one":
        mean, std = [5.0], [0.25]
        dirs = [write_tiny_run(root / "run", seed=1, rc_average=True, mean=mean, std=std)]
        return Case("one", dirs, np.array(mean), np.array(std), 0, ["expr"])
    mean, std = [-3.0, 7.0], [0.5, 4.0]
    seeds = [2] if request.param == "two" else [3, 4]
    dirs = [write_tiny_run(root / f"run{seed}", seed=seed, n_targets=2, mean=mean, std=std) for seed in seeds]
    return Case(request.param, dirs, np.array(mean), np.array(std), 1, ["target0", "target1"])


def cli(*args) -> int:
    return main([str(arg) for arg in args] + ["--no-progress"])


def read_table(path) -> tuple[list[str], list[list[str]]]:
    header, *rows = Path(path).read_text().splitlines()
    return header.split("\t"), [row.split("\t") for row in rows]


def write_lines(path: Path) -> Path:
    path.write_text("\n".join(SEQUENCES) + "\n")
    return path


def mutant(sequence: str, position: int, base: str) -> str:
    return sequence[:position] + base + sequence[position + 1 :]


# -- predictions -------------------------------------------------------------------------------


def test_predict_defaults_to_training_units_and_standardized_is_the_model_output(case):
    model = case.load()
    assert isinstance(model, Ensemble if case.name == "ensemble" else Run)
    raw, units = case.raw(SEQUENCES), case.units(SEQUENCES)
    default, z = model.predict(SEQUENCES), model.predict(SEQUENCES, standardized=True)
    if case.name == "one":  # one target: (n,)
        assert default.shape == z.shape == (len(SEQUENCES),)
        default, z = default[:, None], z[:, None]
    assert default.dtype == z.dtype == np.float64
    np.testing.assert_allclose(default, units, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(SEQUENCES, standardized=False), model.predict(SEQUENCES))
    if case.name == "ensemble":
        np.testing.assert_allclose(z, raw, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_array_equal(z, raw)  # exactly the model's own output
        run, codes = model, model.lay_out(SEQUENCES).codes
        np.testing.assert_array_equal(run.predict_codes(codes, standardized=True), raw)
        np.testing.assert_allclose(run.predict_codes(codes), units, rtol=1e-12)
    np.testing.assert_allclose(z, (default - case.mean) / case.std, rtol=1e-9, atol=1e-12)
    assert not np.allclose(default, z, atol=1e-2)  # the two units really differ


def test_predict_chunks_defaults_to_training_units(case, tmp_path):
    model, path = case.load(), write_lines(tmp_path / "in.txt")
    default = np.concatenate([values for _, values in model.predict_chunks(read_input(path, chunk_rows=3))])
    z = np.concatenate([values for _, values in model.predict_chunks(read_input(path, chunk_rows=3), standardized=True)])
    np.testing.assert_allclose(default, case.units(SEQUENCES), rtol=1e-12)
    np.testing.assert_allclose(z, case.raw(SEQUENCES), rtol=1e-12, atol=1e-15)


def test_predict_file_and_command_default_to_training_units(case, tmp_path):
    path = write_lines(tmp_path / "in.txt")
    units, raw = case.units(SEQUENCES), case.raw(SEQUENCES)
    assert predict(case.model_arg, path, tmp_path / "api.tsv", device="cpu", progress=False)["units"] == "training units"
    assert predict(case.model_arg, path, tmp_path / "api_z.tsv", device="cpu", standardized=True,
                   progress=False)["units"] == Z_UNITS
    assert cli("predict", *case.cli_models(), "--input", path, "--device", "cpu", "--out", tmp_path / "cli.tsv") == 0
    assert cli("predict", *case.cli_models(), "--input", path, "--device", "cpu", "--standardized",
               "--out", tmp_path / "cli_z.tsv") == 0
    for name, expected in (("api", units), ("cli", units), ("api_z", raw), ("cli_z", raw)):
        header, rows = read_table(tmp_path / f"{name}.tsv")
        assert header == ["sequence", *case.names] and [row[0] for row in rows] == SEQUENCES
        values = np.array([[float(v) for v in row[1:]] for row in rows])
        np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6, err_msg=name)  # 6 significant digits


def test_the_removed_destandardize_is_refused(case, tmp_path, capsys):
    """--destandardize / destandardize= are gone (no shim): a usage error, a TypeError."""
    path = write_lines(tmp_path / "in.txt")
    for command in (["predict", "--out", tmp_path / "o.tsv"], ["ism", "--out", tmp_path / "ism"]):
        with pytest.raises(SystemExit) as exit_info:
            cli(command[0], *case.cli_models(), "--input", path, *command[1:], "--destandardize")
        assert exit_info.value.code == 2
        assert "unrecognized arguments: --destandardize" in capsys.readouterr().err
    with pytest.raises(TypeError, match="destandardize"):
        predict(case.model_arg, path, tmp_path / "o.tsv", destandardize=True, progress=False)
    with pytest.raises(TypeError, match="standardized"):
        proformer.load(case.model_arg, "cpu", standardized=True)  # the units are chosen per call now
    assert not (tmp_path / "o.tsv").exists() and not (tmp_path / "ism").exists()


# -- interpretation ----------------------------------------------------------------------------


def test_ism_defaults_to_training_units_and_standardized_gives_model_output_effects(case):
    model, t = case.load(), case.target
    target = case.names[t] if len(case.names) > 1 else None
    default = proformer.ism(model, SEQUENCES, target=target)
    z = proformer.ism(model, SEQUENCES, target=target, standardized=True)
    assert (default.units, z.units) == ("training units", Z_UNITS)
    assert default.target == z.target == case.names[t]
    np.testing.assert_allclose(default.reference, case.units(SEQUENCES)[:, t], rtol=1e-6)
    np.testing.assert_allclose(z.reference, case.raw(SEQUENCES)[:, t], rtol=1e-6, atol=1e-7)
    # One mutant, predicted through the model directly: its effect in z-scores is the change of the output.
    position = TINY_RUN_HEAD + 5
    base = "A" if SEQUENCES[0][position] != "A" else "C"
    expected = case.raw([mutant(SEQUENCES[0], position, base)])[0, t] - case.raw(SEQUENCES[:1])[0, t]
    assert z.effects[0, "ACGT".index(base), position] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    # Effects scale by the target's std (the mean cancels in a difference); the same positions are NaN.
    np.testing.assert_array_equal(np.isnan(default.effects), np.isnan(z.effects))
    np.testing.assert_allclose(default.effects, z.effects * case.std[t], rtol=1e-5, atol=1e-6)
    assert np.nanmax(np.abs(z.effects)) > 1e-4  # not vacuous


def test_ism_command_defaults_to_training_units(case, tmp_path):
    fasta, t = tmp_path / "in.fa", case.target
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQUENCES)))
    saved = {}
    for flag in ([], ["--standardized"]):
        out = tmp_path / f"ism{len(flag)}"
        assert cli("ism", *case.cli_models(), *case.cli_target(), "--input", fasta, "--out", out, "--top", "0",
                   "--device", "cpu", *flag) == 0
        saved[bool(flag)] = np.load(out / "ism.npz")
    assert str(saved[False]["units"]) == "training units" and str(saved[True]["units"]) == Z_UNITS
    assert str(saved[False]["target"]) == str(saved[True]["target"]) == case.names[t]
    np.testing.assert_allclose(saved[False]["reference"], case.units(SEQUENCES)[:, t], rtol=1e-6)
    np.testing.assert_allclose(saved[True]["reference"], case.raw(SEQUENCES)[:, t], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(saved[False]["effects"], saved[True]["effects"] * case.std[t], rtol=1e-5, atol=1e-6)


def test_saliency_scales_by_the_target_std(case, tmp_path):
    pytest.importorskip("captum")
    model, t = case.load(), case.target
    target = case.names[t] if len(case.names) > 1 else None
    default = proformer.attribute(model, SEQUENCES, "saliency", target=target)
    z = proformer.attribute(model, SEQUENCES, "saliency", target=target, standardized=True)
    assert (default.units, z.units) == ("training units", Z_UNITS) and default.target == case.names[t]
    # d(y * std + mean)/dx = std * dz/dx; unseen positions are NaN in both.
    np.testing.assert_array_equal(np.isnan(default.attributions), np.isnan(z.attributions))
    np.testing.assert_allclose(default.attributions, z.attributions * case.std[t], rtol=1e-5, atol=1e-7)
    assert np.nanmax(np.abs(z.attributions)) > 1e-4
    # The command writes the same arrays.
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQUENCES)))
    for flag, result in (([], default), (["--standardized"], z)):
        out = tmp_path / f"attr{len(flag)}"
        assert cli("attribute", *case.cli_models(), *case.cli_target(), "--input", fasta, "--method", "saliency",
                   "--device", "cpu", "--out", out, *flag) == 0
        saved = np.load(out / "attributions.npz")
        assert str(saved["units"]) == result.units
        np.testing.assert_allclose(saved["attributions"], result.attributions, rtol=1e-6, atol=1e-8)


def test_variant_effects_default_to_training_units(case, tmp_path):
    model, t = case.load(), case.target
    target = case.names[t] if len(case.names) > 1 else None
    refs = SEQUENCES
    alts = [mutant(s, TINY_RUN_HEAD + 3 + i, "G" if s[TINY_RUN_HEAD + 3 + i] != "G" else "T") for i, s in enumerate(refs)]
    ids = [f"v{i}" for i in range(len(refs))]
    raw_ref, raw_alt = case.raw(refs)[:, t], case.raw(alts)[:, t]
    default = proformer.variant_effect(model, ref=refs, alt=alts, ids=ids, target=target)
    z = proformer.variant_effect(model, ref=refs, alt=alts, ids=ids, target=target, standardized=True)
    assert (default.standardized, default.units, z.standardized, z.units) == (False, "training units", True, Z_UNITS)
    std, mean = case.std[t], case.mean[t]
    # Other batches than case.raw's: equal to float32 rounding (the units differ by far more).
    np.testing.assert_allclose(z["ref_prediction"], raw_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(z["alt_prediction"], raw_alt, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(z["effect"], raw_alt - raw_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(default["ref_prediction"], raw_ref * std + mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(default["alt_prediction"], raw_alt * std + mean, rtol=1e-6, atol=1e-6)
    # The same batches in either unit: exactly y * std + mean.
    np.testing.assert_allclose(default["ref_prediction"], z["ref_prediction"] * std + mean, rtol=1e-12)
    np.testing.assert_allclose(default["alt_prediction"], z["alt_prediction"] * std + mean, rtol=1e-12)
    np.testing.assert_allclose(default["effect"], z["effect"] * std, rtol=1e-9, atol=1e-12)
    # proformer variant-effect --pairs writes the same numbers (9 significant digits).
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("id\tref_sequence\talt_sequence\n" + "".join(f"{i}\t{r}\t{a}\n" for i, r, a in zip(ids, refs, alts)))
    for flag, effects in (([], default), (["--standardized"], z)):
        out = tmp_path / f"effects{len(flag)}.tsv"
        assert cli("variant-effect", *case.cli_models(), *case.cli_target(), "--pairs", pairs, "--device", "cpu",
                   "--out", out, *flag) == 0
        header, rows = read_table(out)
        assert header[:4] == ["id", "ref_prediction", "alt_prediction", "effect"]
        assert [row[0] for row in rows] == ids
        for column in ("ref_prediction", "alt_prediction", "effect"):
            values = [float(row[header.index(column)]) for row in rows]
            np.testing.assert_allclose(values, effects[column], rtol=1e-8, atol=1e-12, err_msg=column)


def test_design_predictions_default_to_training_units(case, tmp_path):
    model, t = case.load(), case.target
    target = case.names[t] if len(case.names) > 1 else None
    default = proformer.design(model, SEQUENCES, "high", 2, target=target)
    z = proformer.design(model, SEQUENCES, "high", 2, target=target, standardized=True)
    std, mean = case.std[t], case.mean[t]
    assert any(d.edits for d in z)
    for units_design, z_design in zip(default, z):
        assert units_design.edits == z_design.edits  # std > 0: the same search in either unit
        raw = case.raw(z_design.steps())[:, t]  # every step's sequence through the model itself
        # (in other batches than the search's: equal to float32 rounding)
        np.testing.assert_allclose(z_design.predictions, raw, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(units_design.predictions, raw * std + mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(units_design.predictions, z_design.predictions * std + mean, rtol=1e-12)
    # proformer design writes the same predictions (6 significant digits).
    fasta = tmp_path / "seeds.fa"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQUENCES)))
    for flag, designs in (([], default), (["--standardized"], z)):
        out = tmp_path / f"designs{len(flag)}.tsv"
        assert cli("design", *case.cli_models(), *case.cli_target(), "--input", fasta, "--target", "high",
                   "--max-edits", "2", "--device", "cpu", "--out", out, *flag) == 0
        header, rows = read_table(out)
        written = np.array([float(row[header.index("prediction")]) for row in rows])
        expected = np.concatenate([d.predictions for d in designs])
        np.testing.assert_allclose(written, expected, rtol=1e-5, atol=1e-6)
