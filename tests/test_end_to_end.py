"""The whole path through the command line on the committed fixtures (tests/fixtures): prepare ->
train -> predict (a TSV and the challenge's JSON) -> score. Nothing outside the repository is
needed (no ../shared, no download); about 15 s on one thread.

The fixtures plant a rule that a model learns only by knowing where it is in the sequence: the
expression is 3 + 12 x the G+C fraction of the core's first half (tests/fixtures/make_fixtures.py).
So the thresholds below tell a working pipeline from one that misaligns rows or loses the
orientation: on the project's 2-core machine the working path reaches r = 0.98-0.99 on the 130
held-out rows (seeds 0-3), while the same model given its input shifted by one row, or every
sequence reversed or reverse-complemented, reaches r < 0.1, and a model trained on shuffled
targets r = -0.6. What this test cannot see is a small trimming error (flanks of 0 instead of
17/13 move an 80-nt core by 2 positions; r stays 0.98): test_sequence.py checks the layout.
"""


from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import (
    DATA,
    TINY_MODEL,
    as_overrides,
    read_csv,
    read_predictions,
    torch_threads,
)

from proformer.cli import main
from proformer.metrics import pearson

TRAIN = DATA / "dream_train.tsv"


MINI = DATA / "dream_mini"  # a miniature dream2022 directory: 130 test rows, 65 public


TRUTH = DATA / "dream_test_truth.tsv"  # measured expression of every test row, in test order


TEST_SEQUENCES = MINI / "test_sequences.txt"


BOARD = MINI / "public_leaderboard"


# Three epochs with a constant lr of 1e-2: learnt at every seed tried (0-3), ~8 s on one thread.
EPOCHS = 3


RECIPE = {**TINY_MODEL, "batch_size": 32, "data.split": "hash:0.8", "lr": 1e-2, "schedule": "constant",
          "epochs": EPOCHS}


def proformer(*args) -> str:
    """``proformer ARGS`` in this process (the console script's ``main``); what it printed to stdout."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in args])
    assert code == 0, f"proformer {args[0]} exited {code}: {err.getvalue()[-2000:]}"
    return out.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("end_to_end")
    paths = {"data": root / "data", "run": root / "run", "tsv": root / "predictions.tsv",
             "json": root / "submission.json"}
    with torch_threads(1):
        printed = {"prepare": proformer("prepare", TRAIN, "--out", paths["data"], "--no-progress")}
        sets = [part for setting in as_overrides(RECIPE) for part in ("--set", setting)]
        printed["train"] = proformer("train", "--data", paths["data"], "--out", paths["run"], "--no-progress", *sets)
        proformer("predict", "--model", paths["run"], "--input", TEST_SEQUENCES, "--out", paths["tsv"],
                  "--no-progress")
        proformer("predict", "--model", paths["run"], "--input", TEST_SEQUENCES, "--out", paths["json"],
                  "--format", "dream-json", "--data-dir", MINI, "--no-progress")
    return {**paths, "printed": printed}


def test_prepare_keeps_every_training_row_with_the_dream_layout(run):
    n_rows = len(TRAIN.read_text().splitlines())
    assert n_rows == 400
    assert f"{n_rows} of {n_rows} rows kept" in run["printed"]["prepare"]
    meta = json.loads((run["data"] / "meta.json").read_text())
    assert meta["rows_kept"] == n_rows and not any(meta["dropped"].values())
    # The fixture's flanks are 17 and 13 nt (make_fixtures.py spells them out): detected as DREAM.
    assert (meta["transforms"]["head"], meta["transforms"]["tail"]) == (17, 13)
    assert np.load(run["data"] / "targets.npy").shape == (n_rows, 1)


def test_training_writes_the_run_and_learns_the_planted_rule(run):
    for name in ("config.json", "weights.safetensors", "metrics.csv"):
        assert (run["run"] / name).is_file(), name
    epochs = read_csv(run["run"] / "metrics.csv")
    assert [int(row["epoch"]) for row in epochs] == list(range(EPOCHS))
    # ~70 validation rows: chance correlations stay below ~0.3.
    assert max(float(row["val_pearson"]) for row in epochs) > 0.8


def test_tsv_predictions_keep_the_input_order_and_follow_the_held_out_truth(run):
    header, *rows = run["tsv"].read_text().splitlines()
    assert header.split("\t")[0] == "sequence"  # then one column per target, by name
    sequences = TEST_SEQUENCES.read_text().splitlines()
    assert len(rows) == len(sequences) == 130
    assert [row.split("\t")[0] for row in rows] == sequences
    truth_rows = [line.split("\t") for line in TRUTH.read_text().splitlines()]
    assert [sequence for sequence, _ in truth_rows] == sequences
    predicted, truth = read_predictions(run["tsv"]), np.array([float(value) for _, value in truth_rows])
    assert pearson(predicted, truth) > 0.9


def test_dream_json_follows_the_template_order_and_the_tsv_values(run):
    submission = json.loads(run["json"].read_text())
    template = json.loads((BOARD / "sample_submission.json").read_text())
    assert list(submission) == list(template)  # the template's (unsorted) order, every index once
    assert list(template) != sorted(template, key=int)  # so the order above is a real check
    # Row i of the input is test index i: the JSON holds the TSV's prediction of that row.
    tsv = read_predictions(run["tsv"])
    np.testing.assert_allclose([submission[key] for key in template], tsv[[int(key) for key in template]],
                               rtol=1e-5, atol=1e-5)


def test_score_of_the_submission_through_the_cli(run):
    done = subprocess.run([sys.executable, "-m", "proformer.cli", "score", str(run["json"]), "--data-dir", str(MINI),
                           "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    subsets = result["subsets"]
    # Every subset is scored on the members the fixture's public files list.
    for name, scored in subsets.items():
        listed = json.loads((BOARD / ("ground.json" if name == "all" else f"{name}_exp_indices.json")).read_text())
        assert scored["n"] == len(listed) >= 4, name
    # "all" is the correlation of the submitted values with ground.json's, index by index.
    ground = json.loads((BOARD / "ground.json").read_text())
    submission = json.loads(run["json"].read_text())
    direct = pearson([submission[key] for key in ground], list(ground.values()))
    assert subsets["all"]["pearson_r"] == pytest.approx(direct, abs=1e-9)
    assert subsets["all"]["pearson_r"] > 0.9
    # Cores whose halves disagree: a model of total G+C, or of the wrong half, gets these wrong.
    assert subsets["challenging"]["pearson_r"] > 0.8
    # Signed: Score PearsonR^2 squares r, so a reversed model can still score well on it.
    assert result["score_spearman"] > 0.6 and result["score_pearson_r2"] > 0.5


def test_committed_fixtures_are_what_make_fixtures_writes():
    done = subprocess.run([sys.executable, str(DATA / "make_fixtures.py"), "--check"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_miniature_is_a_dream_directory_on_both_splits():
    """The CSVs of test_subsets/ agree with the public JSON (the SNV list's split column included),
    so the private split's subsets load too; scoring it needs a truth for all 71,103 test rows,
    which a miniature cannot give (proformer.score.N_TEST is fixed)."""
    from proformer.score import N_TEST, subset_definitions

    public = {name: s.n for name, s in subset_definitions(MINI, "public").items()}
    private = {name: s.n for name, s in subset_definitions(MINI, "private").items()}
    assert public["all"] == 65 and private["all"] == N_TEST - 65
    # Half of each subset's members are public, the other half private.
    assert {name: n for name, n in private.items() if name != "all"} == {
        name: n for name, n in public.items() if name != "all"}
