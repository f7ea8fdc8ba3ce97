"""Tests of :mod:`proformer.score.official`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    DATA,
    MEAN,
    MINI,
    N_PUBLIC,
    STD,
    _scores,
    _write,
    write_tiny_run,
)
from scipy import stats

from proformer.cli import main
from proformer.metrics import pearson
from proformer.predict import predict
from proformer.score import (
    N_TEST,
    load_predictions,
    score,
    score_private,
    score_public,
    subset_definitions,
)

#: The challenge's published weights, in the order of its formula (Rafi et al. 2024).
OFFICIAL_WEIGHTS = [("all", 1.0), ("high", 0.3), ("low", 0.3), ("yeast", 0.3), ("random", 0.3),
                    ("challenging", 0.5), ("SNVs", 1.25), ("motif_perturbation", 0.3), ("motif_tiling", 0.4)]


def _reference_score(predictions: dict[int, float], board: Path) -> tuple[dict, dict, float, float]:
    """The public score written out plainly with scipy, from the leaderboard JSON files: per subset
    r and rho of the values (or of ``alt - ref`` differences for pairs), then the weighted means
    of r^2 and rho. Assumes no duplicate keys (the committed miniature has none)."""
    r, rho = {}, {}
    for name, _ in OFFICIAL_WEIGHTS:
        listed = json.loads((board / ("ground.json" if name == "all" else f"{name}_exp_indices.json")).read_text())
        if "," in next(iter(listed)):
            pairs = [tuple(int(i) for i in key.split(",")) for key in listed]
            predicted = [predictions[alt] - predictions[ref] for alt, ref in pairs]
            truth = [alt - ref for alt, ref in listed.values()]
        else:
            predicted, truth = [predictions[int(key)] for key in listed], list(listed.values())
        r[name] = stats.pearsonr(predicted, truth).statistic
        rho[name] = stats.spearmanr(predicted, truth).statistic
    total = sum(weight for _, weight in OFFICIAL_WEIGHTS)
    return (r, rho, sum(weight * r[name] ** 2 for name, weight in OFFICIAL_WEIGHTS) / total,
            sum(weight * rho[name] for name, weight in OFFICIAL_WEIGHTS) / total)


LEADERBOARD = [
    # file, Score PearsonR^2, Score Spearman, extra figures over "all" (to 4 decimals)
    ("autosome.org_all.json", 0.8290, 0.8596, {"r2_all": 0.9524}),
    ("Unlock_DNA_public.json", 0.7806, 0.8271, {"r_all": 0.9624, "rho_all": 0.9655}),
    ("Camformers_public.json", 0.7632, 0.8234, {}),
    ("mt_public.json", 0.7446, 0.8021, {}),
    ("TheDreamTeam_public.json", 0.7101, 0.7659, {}),
]


def test_score_command_prints_the_official_score(dream_dir, capsys):
    path = dream_dir / "peer_predictions" / "Unlock_DNA_public.json"
    assert main(["score", str(path), "--data-dir", str(dream_dir)]) == 0
    out = capsys.readouterr().out
    assert "Score PearsonR^2     0.7806" in out and "Score Spearman       0.8271" in out
    assert main(["score", str(path), "--data-dir", str(dream_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert round(result["score_pearson_r2"], 4) == 0.7806
    assert main(["score", str(path), "--data-dir", str(dream_dir), "--split", "private"]) == 2
    assert "--truth" in capsys.readouterr().err


def test_score_huge_values_do_not_overflow_to_a_wrong_score():
    """Values near 1e301 gave Pearson 0.0000 with only a RuntimeWarning; r does not depend on scale."""
    ground = json.loads((MINI / "public_leaderboard" / "ground.json").read_text())
    rng = np.random.default_rng(3)
    predictions = {int(key): value + rng.normal(0.0, 1.5) for key, value in ground.items()}
    expected = score_public(predictions, MINI)
    for factor in (1e301, 1e-300):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            scaled = score_public({k: v * factor for k, v in predictions.items()}, MINI)
        assert scaled.r == pytest.approx(expected.r, abs=1e-9)
        assert scaled.score_pearson_r2 == pytest.approx(expected.score_pearson_r2, abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = np.array([1e301, -1e301, 1.5e301, 0.2e301])
        assert pearson(x, x) == pytest.approx(1.0)
        assert np.isnan(pearson(np.array([1.0, np.inf, 2.0]), np.array([1.0, 2.0, 3.0])))


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


def test_dream_json_values_follow_the_units_and_the_score_does_not_move(tmp_path):

    run = write_tiny_run(tmp_path / "run", seed=4)
    mini, sequences = DATA / "dream_mini", DATA / "dream_mini" / "test_sequences.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, extra in (("units.json", {}), ("z.json", {"standardized": True})):
            predict(run, sequences, tmp_path / name, format="dream-json", data_dir=mini, progress=False, **extra)
    units, z = (json.loads((tmp_path / name).read_text()) for name in ("units.json", "z.json"))
    assert list(units) == list(z)
    np.testing.assert_allclose(list(units.values()), np.array(list(z.values())) * STD + MEAN, rtol=1e-12)
    first, second = score(tmp_path / "units.json", mini), score(tmp_path / "z.json", mini)
    assert first.score_pearson_r2 == pytest.approx(second.score_pearson_r2, abs=1e-12)
    assert first.score_spearman == second.score_spearman  # float64 units keep every rank


def test_public_score_equals_a_plain_reference_with_the_official_weights():
    """On the committed miniature (tests/fixtures/dream_mini): predictions = truth + noise give each
    subset its own r, so a wrong weight, a weight on the wrong subset, r for r^2 or a pair taken
    the wrong way round (rho changes sign) moves a score away from the reference's."""
    mini = DATA / "dream_mini"
    ground = json.loads((mini / "public_leaderboard" / "ground.json").read_text())
    rng = np.random.default_rng(3)
    predictions = {int(key): value + rng.normal(0.0, 1.5) for key, value in ground.items()}
    r, rho, pearson_r2, spearman = _reference_score(predictions, mini / "public_leaderboard")
    result = score_public(predictions, mini)
    assert list(result.r) == list(result.to_dict()["subsets"]) == [name for name, _ in OFFICIAL_WEIGHTS]
    assert result.r == pytest.approx(r, abs=1e-12) and result.rho == pytest.approx(rho, abs=1e-12)
    assert min(r.values()) < 0.6 < max(r.values())  # the subsets differ, so the weights matter
    assert result.score_pearson_r2 == pytest.approx(pearson_r2, abs=1e-12)
    assert result.score_spearman == pytest.approx(spearman, abs=1e-12)


@pytest.mark.parametrize(
    "filename, pearson_r2, spearman, extra", LEADERBOARD, ids=[row[0] for row in LEADERBOARD]
)
def test_public_scores_reproduce_the_leaderboard(dream_dir, filename, pearson_r2, spearman, extra):
    predictions = load_predictions(dream_dir / "peer_predictions" / filename)
    result = score_public(predictions, dream_dir)
    assert result.split == "public"
    assert round(result.score_pearson_r2, 4) == pearson_r2
    assert round(result.score_spearman, 4) == spearman
    figures = {
        "r2_all": result.pearson_r2_all,
        "r_all": result.r["all"],
        "rho_all": result.rho["all"],
    }
    for name, expected in extra.items():
        assert round(figures[name], 4) == expected, name
    assert f"{pearson_r2:.4f}" in result.to_table()
    assert json.loads(json.dumps(result.to_dict()))["score_spearman"] == result.score_spearman


def test_public_accepts_arrays_and_string_keys(dream_dir, autosome):
    reference = _scores(score_public(autosome, dream_dir))
    public = subset_definitions(dream_dir)["all"].indices
    as_strings = {str(i): float(autosome[i]) for i in public}
    assert _scores(score_public(as_strings, dream_dir)) == pytest.approx(reference, abs=1e-12)


def test_public_missing_prediction_names_count_and_example(dream_dir, autosome):
    public = subset_definitions(dream_dir)["all"].indices
    partial = {int(i): float(autosome[i]) for i in public[3:]}
    with pytest.raises(ValueError, match=rf"missing for 3 of the {N_PUBLIC} .*index {public[0]}"):
        score_public(partial, dream_dir)


def test_public_constant_prediction_fails_clearly(dream_dir):
    with pytest.raises(ValueError, match=r"Pearson correlation is undefined.*constant"):
        score_public(np.full(N_TEST, 0.5), dream_dir)


def test_private_perfect_prediction_scores_one(dream_dir, private_truth):
    result = score_private(private_truth, private_truth, dream_dir)
    assert result.split == "private"
    assert _scores(result) == pytest.approx((1.0, 1.0), abs=1e-12)


def test_private_index_changes_private_score_only(dream_dir, autosome, private_truth):
    private_high = subset_definitions(dream_dir, "private")["high"].indices
    reference_private = score_private(autosome, private_truth, dream_dir)
    reference_public = score_public(autosome, dream_dir)
    predictions = autosome.copy()
    predictions[private_high[:20]] += 3.0
    assert _scores(score_private(predictions, private_truth, dream_dir)) != _scores(
        reference_private
    )
    assert _scores(score_public(predictions, dream_dir)) == _scores(reference_public)
    truth = private_truth.copy()
    truth[private_high[:20]] -= 3.0
    assert _scores(score_private(autosome, truth, dream_dir)) != _scores(reference_private)


def test_private_constant_prediction_or_truth_fails_clearly(dream_dir, private_truth):
    with pytest.raises(ValueError, match=r"Pearson correlation is undefined on the private"):
        score_private(np.zeros(N_TEST), private_truth, dream_dir)
    with pytest.raises(ValueError, match=r"the truth .* constant"):
        score_private(private_truth, np.ones(N_TEST), dream_dir)


def test_private_needs_full_predictions_and_truth(dream_dir, autosome, private_truth):
    public = subset_definitions(dream_dir)["all"].indices
    public_only = {int(i): float(autosome[i]) for i in public}
    with pytest.raises(ValueError, match=r"predictions are missing for \d+ of the"):
        score_private(public_only, private_truth, dream_dir)
    with pytest.raises(ValueError, match=r"truth must hold one value per test row"):
        score_private(autosome, private_truth[:-1], dream_dir)
    truth = private_truth.copy()
    truth[subset_definitions(dream_dir, "private")["low"].indices[0]] = np.nan
    with pytest.raises(ValueError, match=r"truth values are missing for 1 of"):
        score_private(autosome, truth, dream_dir)


def test_missing_data_dir_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="ground.json"):
        score_public(np.zeros(N_TEST), tmp_path)


def test_a_predict_tsv_with_its_header_scores_like_the_same_json(dream_dir, autosome, tmp_path):
    """predict --format tsv writes 'sequence<TAB>NAME' first; score skips that line (and only a
    column-name line) and matches rows to test indices after it."""

    sequences = (dream_dir / "test_sequences.txt").read_text().split("\n")[: len(autosome)]
    sequences = [line.split("\t")[0] for line in sequences]
    lines = ["sequence\texpression"] + [f"{s}\t{float(v)!r}" for s, v in zip(sequences, autosome)]
    path = _write(tmp_path / "predicted.tsv", lines)
    expected = _scores(score_public(autosome, dream_dir))
    assert _scores(score(path, dream_dir, split="public")) == pytest.approx(expected, abs=1e-12)
    shifted = _write(tmp_path / "shifted.tsv", lines[:1] + lines[2:] + lines[1:2])
    with pytest.raises(ValueError, match=r"shifted\.tsv: line 2: the sequence column does not match test row 1"):
        score(shifted, dream_dir, split="public")
