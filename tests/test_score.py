"""Tests of proformer.score: the official DREAM 2022 score on the public and private splits.

The public split is checked against the leaderboard figures of five real submissions; the
private split, whose truth is not public, is checked by properties (perfect prediction, which
indices matter, constant predictions) on a truth array built here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA
from scipy import stats

from proformer.score import (
    N_TEST,
    PAIRED_SUBSETS,
    SUBSET_WEIGHTS,
    ScoreResult,
    load_predictions,
    load_truth,
    score_private,
    score_public,
    subset_definitions,
)

N_PUBLIC = 9045


@pytest.fixture(scope="module")
def autosome(dream_dir: Path) -> np.ndarray:
    """The winning team's predictions for all 71,103 test rows, as an array."""
    predictions = load_predictions(dream_dir / "peer_predictions" / "autosome.org_all.json")
    assert isinstance(predictions, dict) and len(predictions) == N_TEST
    return np.array([predictions[i] for i in range(N_TEST)])


@pytest.fixture(scope="module")
def private_truth(autosome: np.ndarray) -> np.ndarray:
    """A stand-in truth for all rows: autosome's predictions plus seeded noise."""
    rng = np.random.default_rng(2022)
    return autosome + rng.normal(0.0, 0.5, size=N_TEST)


def _scores(result: ScoreResult) -> tuple[float, float]:
    return result.score_pearson_r2, result.score_spearman


# --------------------------------------------------------------------------------------------
# Weights: the score of a submission against a plain reference of the challenge's formula
# --------------------------------------------------------------------------------------------

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


def test_public_score_equals_a_plain_reference_with_the_official_weights():
    """On the committed miniature (tests/data/dream_mini): predictions = truth + noise give each
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


# --------------------------------------------------------------------------------------------
# Public split: reproduce the leaderboard
# --------------------------------------------------------------------------------------------

LEADERBOARD = [
    # file, Score PearsonR^2, Score Spearman, extra figures over "all" (to 4 decimals)
    ("autosome.org_all.json", 0.8290, 0.8596, {"r2_all": 0.9524}),
    ("Unlock_DNA_public.json", 0.7806, 0.8271, {"r_all": 0.9624, "rho_all": 0.9655}),
    ("Camformers_public.json", 0.7632, 0.8234, {}),
    ("mt_public.json", 0.7446, 0.8021, {}),
    ("TheDreamTeam_public.json", 0.7101, 0.7659, {}),
]


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


def test_public_subset_sizes_count_duplicates_once(dream_dir):
    result_n = {name: subset.n for name, subset in subset_definitions(dream_dir).items()}
    assert result_n == {
        "all": N_PUBLIC, "high": 96, "low": 99, "yeast": 208, "random": 733,
        "challenging": 195, "SNVs": 4670, "motif_perturbation": 328, "motif_tiling": 263,
    }  # fmt: skip


def test_public_pairs_are_kept_as_listed(dream_dir):
    """Two pair-set choices the leaderboard figures depend on.

    The SNV JSON lists one pair in both orientations; dropping either one turns mt's Spearman
    score into 0.8022. Motif tiling lists the self-pair (10922, 10922), whose difference is
    always 0; dropping it turns Unlock_DNA's Spearman score into 0.8272.
    """
    subsets = subset_definitions(dream_dir)
    snv = {tuple(pair) for pair in subsets["SNVs"].indices.tolist()}
    assert {(22900, 22905), (22905, 22900)} <= snv
    assert (10922, 10922) in {tuple(pair) for pair in subsets["motif_tiling"].indices.tolist()}


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


def test_subset_definitions_are_cached_and_read_only(dream_dir):
    for split in ("public", "private"):
        first, second = subset_definitions(dream_dir, split), subset_definitions(dream_dir, split)
        assert all(first[name].indices is second[name].indices for name in SUBSET_WEIGHTS)
        with pytest.raises(ValueError):
            first["high"].indices[0] = 1
    with pytest.raises(ValueError, match="unknown split"):
        subset_definitions(dream_dir, "secret")


# --------------------------------------------------------------------------------------------
# Private split: properties
# --------------------------------------------------------------------------------------------


def test_private_subset_sizes(dream_dir):
    private = subset_definitions(dream_dir, "private")
    public = subset_definitions(dream_dir, "public")
    sizes = {name: subset.n for name, subset in private.items()}
    assert sizes["all"] == N_TEST - N_PUBLIC == 62058
    # Distinct rows of the official subset lists (docs/model.md section 6), minus the public ones.
    distinct = {"high": 968, "low": 997, "yeast": 578, "random": 6349, "challenging": 1953,
                "motif_perturbation": 3287, "motif_tiling": 2624}  # fmt: skip
    for name, total in distinct.items():
        assert sizes[name] == total - public[name].n, name
    # The reconstructed SNV list: 45,489 pairs, 40,820 marked private. The public JSON's 4,670
    # pairs are 4,669 of them plus one listed again in the other orientation.
    assert sizes["SNVs"] == 40820 == 45489 - (public["SNVs"].n - 1)
    public_indices = set(public["all"].indices.tolist())
    for name in ("high", "low", "yeast", "random", "challenging", "all"):
        assert not public_indices & set(private[name].indices.tolist()), name


def test_private_perfect_prediction_scores_one(dream_dir, private_truth):
    result = score_private(private_truth, private_truth, dream_dir)
    assert result.split == "private"
    assert _scores(result) == pytest.approx((1.0, 1.0), abs=1e-12)


def test_private_ignores_public_indices_outside_private_pairs(dream_dir, autosome, private_truth):
    private = subset_definitions(dream_dir, "private")
    in_private_pairs = np.unique(
        np.concatenate([private[name].indices.ravel() for name in PAIRED_SUBSETS])
    )
    public = subset_definitions(dream_dir, "public")["all"].indices
    free = np.setdiff1d(public, in_private_pairs)
    assert free.size > 4000
    reference = score_private(autosome, private_truth, dream_dir)
    truth, predictions = private_truth.copy(), autosome.copy()
    truth[free[:50]] += 10.0
    predictions[free[50:100]] -= 10.0
    changed = score_private(predictions, truth, dream_dir)
    assert _scores(changed) == _scores(reference)


def test_private_pairs_may_reference_public_sequences(dream_dir, autosome, private_truth):
    """A private pair may have a public member (e.g. the public reference 10922 of many
    motif-tiling pairs): its truth then enters the private score. Documented, not hidden."""
    private = subset_definitions(dream_dir, "private")
    assert 10922 in subset_definitions(dream_dir, "public")["all"].indices
    assert 10922 in private["motif_tiling"].indices[:, 1]
    reference = score_private(autosome, private_truth, dream_dir)
    truth = private_truth.copy()
    truth[10922] += 1.0
    changed = score_private(autosome, truth, dream_dir)
    assert changed.r["motif_tiling"] != reference.r["motif_tiling"]
    assert changed.r["all"] == reference.r["all"]


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


# --------------------------------------------------------------------------------------------
# Subset rules on a small synthetic data directory (no real data needed)
# --------------------------------------------------------------------------------------------


def _write_toy_dir(root: Path, snv_flags: dict[tuple[int, int], str] | None = None) -> Path:
    """Public indices 0..19; private rows 100.. in every subset."""
    rng = np.random.default_rng(0)
    truth = {i: float(rng.normal()) for i in range(20)}
    board, subsets = root / "public_leaderboard", root / "test_subsets"
    board.mkdir(parents=True)
    subsets.mkdir()
    (board / "ground.json").write_text(json.dumps({str(i): v for i, v in truth.items()}))
    singles = {"high": (0, 1, 2), "low": (3, 4, 5), "yeast": (6, 7, 8), "random": (9, 10, 11),
               "challenging": (12, 13, 14)}  # fmt: skip
    csv_names = {
        "high": "high_exp_seqs.csv",
        "low": "low_exp_seqs.csv",
        "yeast": "yeast_seqs.csv",
        "random": "all_random_seqs.csv",
        "challenging": "challenging_seqs.csv",
    }
    for name, indices in singles.items():
        (board / f"{name}_exp_indices.json").write_text(
            json.dumps({str(i): truth[i] for i in indices})
        )
        rows = list(indices) + [100, 101, 102, 101]  # 101 twice: counts once
        lines = [",tag,pos,exp"] + [f"{k},t{k},{pos}," for k, pos in enumerate(rows)]
        (subsets / csv_names[name]).write_text("\n".join(lines) + "\n")
    pairs = {
        "SNVs": [(0, 1), (1, 0), (2, 3)],
        "motif_perturbation": [(4, 5), (6, 7), (8, 9)],
        "motif_tiling": [(10, 11), (12, 12), (13, 14)],
    }
    for name, listed in pairs.items():
        (board / f"{name}_exp_indices.json").write_text(
            json.dumps({f"{a},{r}": [truth[a], truth[r]] for a, r in listed})
        )
    private_pairs = [(100, 101), (102, 103), (104, 0), (105, 106)]
    for name, filename in (("motif_perturbation", "motif_perturbation_seqs.csv"),
                           ("motif_tiling", "motif_tiling_seqs.csv")):  # fmt: skip
        rows = [(r, a) for a, r in pairs[name]] + private_pairs + [(100, 101)]  # reversed, dup
        lines = [",alt_pos,ref_pos"] + [f"{k},{a},{r}" for k, (a, r) in enumerate(rows)]
        (subsets / filename).write_text("\n".join(lines) + "\n")
    flags = {(0, 1): "public", (2, 3): "public"}
    flags.update({pair: "private" for pair in private_pairs})
    flags.update(snv_flags or {})
    lines = ["alt_pos,ref_pos,split"] + [f"{a},{r},{s}" for (a, r), s in flags.items()]
    (subsets / "snv_pairs_reconstructed.csv").write_text("\n".join(lines) + "\n")
    return root


def test_toy_private_split_rules(tmp_path):
    toy = _write_toy_dir(tmp_path / "toy")
    sizes = {name: s.n for name, s in subset_definitions(toy, "private").items()}
    assert sizes == {"all": N_TEST - 20, "high": 3, "low": 3, "yeast": 3, "random": 3,
                     "challenging": 3, "SNVs": 4, "motif_perturbation": 4,
                     "motif_tiling": 4}  # fmt: skip
    assert subset_definitions(toy)["SNVs"].n == 3  # both orientations kept on the public side
    truth = np.random.default_rng(1).normal(size=N_TEST)
    assert _scores(score_private(truth, truth, toy)) == pytest.approx((1.0, 1.0))


def test_toy_snv_split_column_must_agree_with_public_json(tmp_path):
    toy = _write_toy_dir(tmp_path / "toy", snv_flags={(2, 3): "private"})
    with pytest.raises(ValueError, match="split column disagrees"):
        subset_definitions(toy, "private")


def test_missing_data_dir_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="ground.json"):
        score_public(np.zeros(N_TEST), tmp_path)


# --------------------------------------------------------------------------------------------
# load_predictions / load_truth
# --------------------------------------------------------------------------------------------

VALUES = [0.5, -1.25, 3.0, 0.0, 2.5]
SEQUENCES = ["ACGT", "TTTT", "GGCA", "ACGA", "CCCC"]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_load_predictions_json(tmp_path):
    path = tmp_path / "sub.json"
    path.write_text(json.dumps({str(i): v for i, v in enumerate(VALUES)}, indent=1))
    assert load_predictions(path, n_test=5) == dict(enumerate(VALUES))


def test_load_predictions_tsv_and_lines(tmp_path):
    tsv = _write(tmp_path / "pred.tsv", [f"{s}\t{v}" for s, v in zip(SEQUENCES, VALUES)])
    lines = tmp_path / "pred.txt"
    lines.write_text("".join(f"{v}\r\n" for v in VALUES))  # CRLF is fine
    for path in (tsv, lines):
        loaded = load_predictions(path, n_test=5)
        assert isinstance(loaded, np.ndarray) and loaded.tolist() == VALUES
    np.testing.assert_array_equal(load_truth(tsv, n_test=5), VALUES)


@pytest.mark.parametrize(
    "name, lines, pattern",
    [
        ("bad.tsv", ["A\t1", "C\t2", "G\tabc", "T\t4", "A\t5"], r"line 3: non-numeric .*'abc'"),
        ("nan.txt", ["1", "nan", "3", "4", "5"], r"line 2: prediction 'nan' is not finite"),
        # The one number parser of data files (io.numbers), not Python's float(): '_' separators
        # and non-ASCII digits are syntax, not data, here as in prepare.
        ("underscore.tsv", ["A\t1", "C\t1_000", "G\t3", "T\t4", "A\t5"], r"line 2: non-numeric .*'1_000'"),
        ("wide.txt", ["1", "2", "\uff13", "4", "5"], r"line 3: non-numeric"),
        ("short.txt", ["1", "2", "3", "4"], r"ends at line 4: found 4 rows but expected 5"),
        ("long.tsv", [f"A\t{i}" for i in range(6)], r"line 6 is an extra row: found 6 rows"),
        ("no_tab.tsv", ["A\t1", "C\t2", "G\t3", "T 4", "A\t5"], r"line 4: expected 2 tab-sep"),
        # A column-name line is skipped (predict's TSV has one); any other text on line 1 is a row.
        ("header.tsv", ["seq_name\tprediction"] + [f"{b}\t{i}" for i, b in enumerate("ACGTN")], r"line 1: .*header line must name"),
    ],
)
def test_load_predictions_bad_lines(tmp_path, name, lines, pattern):
    path = _write(tmp_path / name, lines)
    with pytest.raises(ValueError, match=pattern) as error:
        load_predictions(path, n_test=5)
    assert name in str(error.value)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ('{\n"0": 1.0,\n"1": 2.0,\n"1": 3.0\n}', r"line 4: duplicate key '1'"),
        ('{\n"0": 1.0,\n"1": "high"\n}', r"line 3: value 'high' for index 1 is not a finite"),
        ('{\n"0": NaN,\n"1": 1.0\n}', r"line 2: value nan for index 0"),
        ('{\n"0": 1.0,\n"1": null\n}', r"line 3: value None"),
        ('{\n"0": 1.0,\n"seven": 1.0\n}', r"line 3: key 'seven' is not a test index"),
        ('{\n"0": 1.0,\n"9": 1.0\n}', r"line 3: index 9 is out of range"),
        ('{\n"0": 1.0,\n"1": 1.0,\n}', r"line 4: not valid JSON"),
        ("[1.0, 2.0]", r"line 1: expected a JSON object"),
    ],
)
def test_load_predictions_bad_json(tmp_path, text, pattern):
    path = tmp_path / "submission.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=pattern) as error:
        load_predictions(path, n_test=5)
    assert "submission.json" in str(error.value)


def test_load_truth_requires_two_columns(tmp_path):
    path = _write(tmp_path / "truth.txt", [str(v) for v in VALUES])
    with pytest.raises(ValueError, match=r"truth.txt: line 1: expected two tab-separated"):
        load_truth(path, n_test=5)


def test_a_predict_tsv_with_its_header_scores_like_the_same_json(dream_dir, autosome, tmp_path):
    """predict --format tsv writes 'sequence<TAB>NAME' first; score skips that line (and only a
    column-name line) and matches rows to test indices after it."""
    from proformer.score import score

    sequences = (dream_dir / "test_sequences.txt").read_text().split("\n")[: len(autosome)]
    sequences = [line.split("\t")[0] for line in sequences]
    lines = ["sequence\texpression"] + [f"{s}\t{float(v)!r}" for s, v in zip(sequences, autosome)]
    path = _write(tmp_path / "predicted.tsv", lines)
    expected = _scores(score_public(autosome, dream_dir))
    assert _scores(score(path, dream_dir, split="public")) == pytest.approx(expected, abs=1e-12)
    shifted = _write(tmp_path / "shifted.tsv", lines[:1] + lines[2:] + lines[1:2])
    with pytest.raises(ValueError, match=r"shifted\.tsv: line 2: the sequence column does not match test row 1"):
        score(shifted, dream_dir, split="public")
