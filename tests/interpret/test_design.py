"""Tests of :mod:`proformer.interpret.design`."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch
from helpers import (
    SEQUENCES_UNITS,
    TINY_RUN_HEAD,
    TINY_RUN_LENGTH,
    TINY_RUN_TAIL,
    WHOLE,
    cli,
    one_line_run_directory,
    planted_motif_model,
    random_dna,
    read_table_units,
    tiny_run_info,
    write_tiny_run,
)

import proformer
from proformer.cli import main
from proformer.inference import Run
from proformer.interpret.design import design, run_design, write_designs
from proformer.io.errors import InputError
from proformer.io.run import (
    write_run_model,
)
from proformer.model import Proformer

FULL = TINY_RUN_HEAD + TINY_RUN_LENGTH + TINY_RUN_TAIL  # 23 nt: the whole window is seen


def planted() -> Run:
    """The planted model; design it with ``standardized=True`` so that a prediction is the count
    of GATA matches itself (training units would be ``2 * count + 1``)."""
    return Run(planted_motif_model(), tiny_run_info())


def matches(sequence: str) -> int:
    return sum(sequence[i : i + 4] == "GATA" for i in range(len(sequence) - 3))


def read_tsv(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def replay(d) -> str:
    """The input with the recorded edits applied in order, each edit's ref base checked."""
    sequence = list(d.input)
    for position, ref, new in d.edits:
        assert sequence[position] == ref and new != ref
        sequence[position] = new
    return "".join(sequence)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("design")
    return write_tiny_run(root / "model", seed=0), write_tiny_run(root / "oracle", seed=1)


def run_with(path, seed=1, names=None, length=None, head=None, tail=None):
    """A tiny run whose target names, window length or flanks are changed."""
    info = tiny_run_info(n_targets=len(names) if names else 1)
    if names:
        info = dataclasses.replace(info, target=dataclasses.replace(info.target, names=list(names)))
    if length is not None:
        info = dataclasses.replace(info, model=dataclasses.replace(info.model, length=length),
                                   layout=dataclasses.replace(info.layout, length=length))
    if head is not None or tail is not None:
        info = dataclasses.replace(info, layout=dataclasses.replace(info.layout, head=head, tail=tail))
    torch.manual_seed(seed)
    path.mkdir(parents=True)
    write_run_model(path, Proformer(info.model).state_dict(), info)
    return path


SEQUENCES = random_dna(np.random.default_rng(3), 2, WHOLE)


def test_high_target_creates_motif_matches_inside_the_window_only():
    model = planted()
    # Three one-edit-away GATAs (GATC, GTTA, CATA) and no match; the second input is 2 nt longer
    # than the window, so its layout cuts one more position at each end that must stay as given.
    # The third, longer still and with nothing to gain from one edit, stops first (and its width
    # must not leak into the others' later steps).
    near = "GATCCCGTTACCCATACCCC"
    inputs = ["GG" + near + "G", "AGATA" + "TATCCCGTTACCCATAC" + "GGT", "GGC" + "CCCCGAACCCCCCCCCCCCC" + "GGC"]
    window = model.lay_out(inputs).window
    assert [matches(s) for s in inputs] == [0, 1, 0] and model.predict(inputs, standardized=True).tolist() == [0, 0, 0]

    for max_edits in (5, 2):
        designs = design(model, inputs, "high", max_edits, standardized=True)
        assert designs[2].edits == [] and designs[2].sequence == inputs[2]
        for row, d in enumerate(designs[:2]):
            assert 1 <= len(d.edits) <= max_edits
            assert np.all(np.diff(d.predictions) > 0)  # every edit strictly improves
            assert d.sequence == replay(d) and len(d.sequence) == len(d.input)
            seen = window[row, : len(d.input)] >= 0
            assert all(seen[position] for position, _, _ in d.edits)
            hidden = ~seen
            assert np.array_equal(np.array(list(d.sequence))[hidden], np.array(list(d.input))[hidden])
            assert d.sequence[:TINY_RUN_HEAD] == d.input[:TINY_RUN_HEAD]
            assert d.sequence[-TINY_RUN_TAIL:] == d.input[-TINY_RUN_TAIL:]
            inside = "".join(a for a, keep in zip(d.sequence, seen) if keep)
            assert d.predictions[-1] == matches(inside)
        if max_edits == 5:
            assert designs[0].predictions.tolist() == [0, 1, 2, 3]  # all three near-matches, then no single edit helps
        else:
            assert [len(d.edits) for d in designs] == [2, 2, 0] and designs[0].predictions[-1] == 2


def test_beam_search_is_never_worse_than_greedy_and_can_be_better():
    model = planted()
    # Greedy takes the first of the tied +1 edits (position 7: AAAT -> AGAT...GATA), which spoils
    # the two compatible ones (7 A>T, 9 T>G: GATAGATA); a beam of 3 keeps those.
    trap = "TT" + "TTAGAAATATACCCCCCCCC" + "T"
    other = "GG" + "GATCCCGTTACCCATACCCC" + "G"
    greedy = design(model, [trap, other], "high", 2, standardized=True)
    wide = design(model, [trap, other], "high", 2, beam=3, standardized=True)
    assert greedy[0].predictions.tolist() == [0, 1] and wide[0].predictions.tolist() == [0, 1, 2]
    assert wide[0].sequence == replay(wide[0]) and matches(wide[0].sequence) == 2
    assert all(w.predictions[-1] >= g.predictions[-1] for w, g in zip(wide, greedy))


def test_search_stops_when_no_substitution_improves():
    class Counting(Run):
        rows = 0

        def model_output(self, codes):  # every forward pass of the run's scorer goes through it
            Counting.rows += len(codes)
            return super().model_output(codes)

    model = Counting(planted_motif_model(), tiny_run_info())
    # GAAC is two edits from GATA and no window is one edit away: no single edit improves, and
    # wandering through neutral edits is not a search step.
    (d,) = design(model, ["GG" + "CCCCGAACCCCCCCCCCCCC" + "G"], "high", 5, beam=3, standardized=True)
    assert d.edits == [] and d.predictions.tolist() == [0] and d.sequence == d.input
    assert Counting.rows == 1 + 3 * TINY_RUN_LENGTH  # the input and its 60 substitutions, once


@pytest.mark.parametrize("goal", ["low", "number"])
def test_low_and_numeric_goals_move_the_prediction_and_record_it(runs, goal):
    model = proformer.load(runs[0], device="cpu", batch_size=50)  # several batches per step
    inputs = random_dna(np.random.default_rng(3), 3, FULL)
    before = model.predict(inputs, standardized=True)
    value = float(before.mean() + 0.5) if goal == "number" else goal
    designs = design(model, inputs, value, 3, beam=2, standardized=True)
    for d, start in zip(designs, before):
        loss = d.predictions if goal == "low" else np.abs(d.predictions - value)
        assert len(d.edits) >= 1 and np.all(np.diff(loss) < 0)
        recomputed = model.predict(d.steps(), standardized=True)
        np.testing.assert_allclose(d.predictions, recomputed, rtol=1e-5, atol=1e-6)
        assert d.predictions[0] == pytest.approx(start, abs=1e-6)
        assert d.sequence == replay(d) and d.sequence[:2] == d.input[:2] and d.sequence[-1] == d.input[-1]


def test_oracle_predictions_are_the_oracles_own(runs, tmp_path):
    model = proformer.load(runs[0], device="cpu")
    oracle = proformer.load(runs[1], device="cpu")
    inputs = random_dna(np.random.default_rng(4), 2, FULL)
    designs = design(model, inputs, "high", 2, ids=["a", "b"], oracle=oracle)  # both in training units
    for d in designs:
        np.testing.assert_allclose(d.oracle_predictions, oracle.predict(d.steps()), rtol=1e-5, atol=1e-6)
        assert not np.allclose(d.oracle_predictions, d.predictions)  # another model's predictions

    rows = read_tsv(write_designs(designs, tmp_path / "designs.tsv"))
    assert list(rows[0]) == ["id", "step", "edit", "prediction", "oracle_prediction", "sequence"]
    assert [(r["id"], r["step"]) for r in rows] == [(d.id, str(k)) for d in designs for k in range(len(d.edits) + 1)]
    assert [r["sequence"] for r in rows] == [s for d in designs for s in d.steps()]
    assert [r["edit"] for r in rows if r["step"] == "0"] == ["", ""]
    assert [r["edit"] for r in rows if r["step"] != "0"] == [f"{p}:{a}>{b}" for d in designs for p, a, b in d.edits]
    sequences = [r["sequence"] for r in rows]
    np.testing.assert_allclose([float(r["oracle_prediction"]) for r in rows], oracle.predict(sequences), rtol=1e-5)
    np.testing.assert_allclose([float(r["prediction"]) for r in rows], model.predict(sequences),
                               rtol=1e-5, atol=1e-6)


def test_run_design_reads_a_file_and_summarises(runs, tmp_path):
    inputs = random_dna(np.random.default_rng(5), 2, FULL)
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">s{i}\n{s.lower()}\n" for i, s in enumerate(inputs)))
    out = tmp_path / "designs.tsv"
    summary = run_design(runs[0], fasta, out, "low", 2, oracle=runs[1], device="cpu", progress=False)
    rows = read_tsv(out)
    assert {r["id"] for r in rows} == {"s0", "s1"} and [r["sequence"] for r in rows if r["step"] == "0"] == inputs
    last = [max((r for r in rows if r["id"] == i), key=lambda r: int(r["step"])) for i in ("s0", "s1")]
    assert summary["designs"] == 2 and summary["units"] == "training units"  # the default
    assert summary["goal"] == "low" and summary["target"] == "expr"
    assert summary["prediction_after"] < summary["prediction_before"]
    assert summary["prediction_after"] == pytest.approx(np.mean([float(r["prediction"]) for r in last]), rel=1e-5)
    assert summary["oracle_after"] == pytest.approx(np.mean([float(r["oracle_prediction"]) for r in last]), rel=1e-5)


def test_cli_ensemble_designs_on_the_mean_of_the_runs(runs, tmp_path):
    """``proformer design --model A --model B --oracle C --oracle D``: one row per step of every
    design, each prediction the mean of A's and B's predictions of that row's sequence, each
    oracle prediction the mean of C's and D's."""
    oracles = [write_tiny_run(tmp_path / f"oracle{seed}", seed=seed) for seed in (2, 3)]
    inputs = random_dna(np.random.default_rng(7), 2, FULL)
    fasta = tmp_path / "in.fa"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(inputs)))
    out = tmp_path / "designs.tsv"
    words = ["design", "--model", str(runs[0]), "--model", str(runs[1]), "--input", str(fasta), "--target", "low",
             "--max-edits", "2", "--beam", "2", "--out", str(out), "--no-progress"]
    assert main(words + [word for oracle in oracles for word in ("--oracle", str(oracle))]) == 0
    rows = read_tsv(out)
    assert list(rows[0]) == ["id", "step", "edit", "prediction", "oracle_prediction", "sequence"]
    for i, sequence in enumerate(inputs):
        path = [r for r in rows if r["id"] == f"s{i}"]
        assert [int(r["step"]) for r in path] == list(range(len(path))) and 2 <= len(path) <= 3
        assert path[0]["sequence"] == sequence and path[0]["edit"] == ""
        assert all(len(r["sequence"]) == FULL for r in path)
        assert np.all(np.diff([float(r["prediction"]) for r in path]) < 0)  # low: every edit lowers the mean
    sequences = [r["sequence"] for r in rows]

    def mean_prediction(run_dirs):
        return np.mean([proformer.load(run, device="cpu").predict(sequences) for run in run_dirs], axis=0)

    np.testing.assert_allclose([float(r["prediction"]) for r in rows], mean_prediction(runs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([float(r["oracle_prediction"]) for r in rows], mean_prediction(oracles),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options, symbol, message", [
    ({"goal": "medium"}, "", "'medium'"),
    ({"goal": float("nan")}, "", "goal=nan"),
    ({"max_edits": 0}, "", "max_edits=0"),
    ({"beam": 0}, "", "beam=0"),
    ({}, "X", "'X'"),
])
def test_bad_input_is_refused_and_writes_nothing(runs, tmp_path, options, symbol, message):
    sequence = random_dna(np.random.default_rng(6), 1, FULL)[0]
    fasta = tmp_path / "in.fa"
    fasta.write_text(f">s0\n{sequence[:9]}{symbol}{sequence[9:]}\n")
    out = tmp_path / "designs.tsv"
    arguments = {"goal": "high", "max_edits": 2, **options}
    with pytest.raises(ValueError, match=message):
        run_design(runs[0], fasta, out, device="cpu", progress=False, **arguments)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.fa"]
    with pytest.raises(ValueError, match=message):  # the Python API refuses it as well
        design(planted(), [sequence[:9] + symbol + sequence[9:]], arguments["goal"], arguments["max_edits"],
               beam=arguments.get("beam", 1))


def test_bad_symbol_error_is_an_input_error_naming_the_sequence():
    with pytest.raises(InputError, match="seq.fa:2"):
        design(planted(), ["GG" + "GATC" * 5 + "G", "GG" + "GAUC" * 5 + "G"], "high", 1, where=["seq.fa:1", "seq.fa:2"])


def test_an_oracle_that_predicts_another_target_is_refused_in_one_line(tmp_path):
    """The design's target must be one the oracle predicts, by name. (Old code: the oracle's first
    column judged the model's first, whatever their names: no error, so pytest.raises fails.)"""
    model = proformer.load(run_with(tmp_path / "model", seed=0, names=["lenti", "yeast"]), "cpu")
    other = proformer.load(run_with(tmp_path / "other", names=["atac"]), "cpu")
    with pytest.raises(ValueError) as caught:
        design(model, SEQUENCES, "high", 1, oracle=other)
    message = one_line_run_directory(str(caught.value))
    assert "predicts 1 target(s) (atac)" in message and "'lenti'" in message and "same target" in message
    # An oracle with one target the model has: the error says --target-name picks it, and it works.
    yeast = run_with(tmp_path / "yeast", names=["yeast"])
    with pytest.raises(ValueError, match=r"give --target-name \(target=\) one both predict: yeast$"):
        design(model, SEQUENCES, "high", 1, oracle=proformer.load(yeast, "cpu"))
    designs = design(model, SEQUENCES, "high", 1, target="yeast", oracle=proformer.load(yeast, "cpu"))
    judge = proformer.load(yeast, "cpu")
    for d in designs:
        np.testing.assert_allclose(d.oracle_predictions, judge.predict(d.steps()), rtol=1e-5, atol=1e-6)
    # An index names the model's column; the oracle's column of that name judges.
    swapped = proformer.load(run_with(tmp_path / "swapped", names=["yeast", "lenti"]), "cpu")
    designs = design(model, SEQUENCES, "high", 1, target=1, oracle=swapped)
    for d in designs:
        np.testing.assert_allclose(d.oracle_predictions, swapped.predict(d.steps())[:, 0], rtol=1e-5, atol=1e-6)


def test_run_design_refuses_an_oracle_of_other_targets_before_its_weights_load(tmp_path):
    """(Old code: no error at all.) The check reads the oracle's config.json only: its damaged
    weights are never read."""
    model = run_with(tmp_path / "model", seed=0, names=["lenti"])
    oracle = run_with(tmp_path / "oracle", names=["atac"])
    (oracle / "weights.safetensors").write_bytes(b"damaged")
    source = tmp_path / "in.txt"
    source.write_text("".join(s + "\n" for s in SEQUENCES))
    with pytest.raises(ValueError) as caught:
        run_design(model, source, tmp_path / "out.tsv", "high", 1, oracle=oracle, device="cpu", progress=False)
    assert "predicts 1 target(s) (atac)" in one_line_run_directory(str(caught.value))
    assert not (tmp_path / "out.tsv").exists()


def test_an_oracle_whose_window_would_cut_a_sequence_is_refused_in_one_line(tmp_path, recwarn):
    """An oracle with a shorter window than the model would judge sequences cut to its centre.
    (Old code: a RuntimeWarning and the cut sequences judged: no error, pytest.raises fails.)
    An oracle with other flanks that still sees every sequence whole is taken."""
    model = proformer.load(run_with(tmp_path / "model", seed=0), "cpu")
    short = proformer.load(run_with(tmp_path / "short", length=TINY_RUN_LENGTH - 4), "cpu")
    with pytest.raises(ValueError) as caught:
        design(model, SEQUENCES, "high", 1, oracle=short, where=["in.txt:1", "in.txt:2"])
    message = one_line_run_directory(str(caught.value))
    assert f"the oracle {tmp_path / 'short'} takes sequences up to {WHOLE - 4} nt" in message
    assert f"in.txt:1 has {WHOLE} nt" in message and "same sequence length" in message
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # refused before any cut
    flanks = proformer.load(run_with(tmp_path / "flanks", head=0, tail=0, length=TINY_RUN_LENGTH + 3), "cpu")
    designs = design(model, SEQUENCES, "high", 1, oracle=flanks)
    assert all(d.oracle_predictions is not None for d in designs)


def test_design_predictions_default_to_training_units(case, tmp_path):
    model, t = case.load(), case.target
    target = case.names[t] if len(case.names) > 1 else None
    default = proformer.design(model, SEQUENCES_UNITS, "high", 2, target=target)
    z = proformer.design(model, SEQUENCES_UNITS, "high", 2, target=target, standardized=True)
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
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQUENCES_UNITS)))
    for flag, designs in (([], default), (["--standardized"], z)):
        out = tmp_path / f"designs{len(flag)}.tsv"
        assert cli("design", *case.cli_models(), *case.cli_target(), "--input", fasta, "--target", "high",
                   "--max-edits", "2", "--device", "cpu", "--out", out, *flag) == 0
        header, rows = read_table_units(out)
        written = np.array([float(row[header.index("prediction")]) for row in rows])
        expected = np.concatenate([d.predictions for d in designs])
        np.testing.assert_allclose(written, expected, rtol=1e-5, atol=1e-6)
