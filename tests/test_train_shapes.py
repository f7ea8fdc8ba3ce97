"""The model's shape comes from the data (issue 14): length and n_targets taken from the dataset
unless set, explicit values checked with fixes that work, the DREAM presets unchanged on DREAM
data; per-target validation metrics; the learning curve; plain progress lines in a log."""

import json

import numpy as np
import pytest
import yaml
from helpers import TINY_MODEL, as_overrides, random_dna, read_csv

from proformer.config import load_run_config, run_preset
from proformer.config.run import is_from_data
from proformer.data.dataset import Dataset
from proformer.data.prepare import prepare
from proformer.model.config import ModelConfig
from proformer.sequence import DREAM_HEAD, DREAM_TAIL, Layout
from proformer.train import train
from proformer.plots import learning_curve_figure
from proformer.train.report import best_summary
from proformer.train.run import resolve_shape

NAMES = ["Dev_log2_enrichment", "Hk_log2_enrichment"]  # DeepSTARR's two targets
TINY_RUN = {**TINY_MODEL, "data.split": "hash:0.8", "batch_size": 64, "epochs": 2, "lr": 3e-3}


def two_target_table(path, n=300, lengths=(230, 230), seed=0):
    """A headed TSV of ``n`` random sequences (lengths drawn from ``lengths``) with two planted
    targets: GATA counts, and C content plus TATA counts."""
    rng = np.random.default_rng(seed)
    rows = ["sequence\t" + "\t".join(NAMES)]
    for _ in range(n):
        sequence = random_dna(rng, 1, int(rng.integers(lengths[0], lengths[1] + 1)))[0]
        dev = sequence.count("GATA") + rng.normal(0, 0.1)
        hk = 20 * sequence.count("C") / len(sequence) + sequence.count("TATA") + rng.normal(0, 0.1)
        rows.append(f"{sequence}\t{dev:.4f}\t{hk:.4f}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def starr(tmp_path_factory):
    """A prepared 230-nt dataset with two targets (DeepSTARR-like)."""
    root = tmp_path_factory.mktemp("starr")
    prepare(two_target_table(root / "starr.tsv"), root / "data", seq_col="sequence", target_cols=NAMES, progress=False)
    return root / "data"


@pytest.fixture(scope="module")
def starr_run(starr, tmp_path_factory):
    """The grid preset on it, nothing about the shape set; progress on, stderr not a terminal."""
    import contextlib
    import io

    config = load_run_config(preset="grid", overrides=[f"data.path={starr}", *as_overrides(TINY_RUN)])
    run_dir = tmp_path_factory.mktemp("runs") / "starr-run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        result = train(config, run_dir, progress=True)
    return run_dir, result, err.getvalue()


def test_a_230_nt_two_target_dataset_trains_with_the_shape_taken_from_the_data(starr_run):
    run_dir, result, err = starr_run
    info = json.loads((run_dir / "config.json").read_text())
    assert info["model"]["length"] == 230 and info["model"]["n_targets"] == 2
    assert info["layout"]["length"] == 230 and info["target"]["names"] == NAMES
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())  # the resolved config
    assert saved["model"]["length"] == 230 and saved["model"]["n_targets"] == 2
    assert (result["length"], result["n_targets"], result["target_names"]) == (230, 2, NAMES)
    # One line says what was taken from the data.
    [note] = [line for line in err.splitlines() if line.startswith("model shape from the data")]
    assert "length=230 (its longest row after trimming 0 + 0 nt)" in note and f"n_targets=2 ({', '.join(NAMES)})" in note


def test_several_targets_get_a_pearson_and_spearman_each_beside_the_mean(starr_run):
    run_dir, result, _ = starr_run
    rows = read_csv(run_dir / "metrics.csv")
    assert len(rows) == 2
    for row in rows:
        pearsons = [float(row[f"val_pearson_{name}"]) for name in NAMES]
        spearmans = [float(row[f"val_spearman_{name}"]) for name in NAMES]
        assert float(row["val_pearson"]) == pytest.approx(np.mean(pearsons), abs=1e-9)
        assert float(row["val_spearman"]) == pytest.approx(np.mean(spearmans), abs=1e-9)
        assert all(np.isfinite(pearsons)) and pearsons[0] != pearsons[1]
    best = json.loads((run_dir / "config.json").read_text())["best"]
    assert {f"val_pearson_{name}" for name in NAMES} <= set(best) and best == result["best"]
    summary = best_summary(result)
    assert "means of 2 targets" in summary
    assert all(f"{name} {best[f'val_pearson_{name}']:.4f}" in summary for name in NAMES)


def test_progress_in_a_log_is_plain_lines_with_the_epoch_metrics(starr_run):
    """stderr is not a terminal: no progress bar (no carriage returns), a line per epoch."""
    _, _, err = starr_run
    assert "\r" not in err
    epochs = [line for line in err.splitlines() if line.startswith("epoch ") and "validation MSE" in line]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all(f"{NAMES[0]} " in line for line in epochs)


def test_an_explicit_length_shorter_than_the_rows_is_refused_naming_fixes_that_work(tmp_path):
    prepare(two_target_table(tmp_path / "t.tsv", n=60, lengths=(150, 230), seed=1), tmp_path / "data",
            seq_col="sequence", target_cols=NAMES, progress=False)
    dataset = Dataset(tmp_path / "data")
    longest = int(dataset.lengths.max())
    shorter = int((dataset.lengths > 200).sum())
    assert 0 < shorter < len(dataset) and longest > 200
    model = load_run_config(preset="grid", overrides=["length=200"]).model
    with pytest.raises(ValueError, match=rf"set --set length={longest}") as caught:
        resolve_shape(dataset, model, dataset.layout())
    message = str(caught.value)
    assert "leave length unset" in message
    # Preparing with --length 200 keeps some rows here, so it is offered, with what it drops.
    assert f"prepare the data again with --length 200, which drops the {shorter} of {len(dataset)} rows" in message
    # A longer length than the rows pads more; n_targets (not set) is the data's.
    model, layout, note = resolve_shape(dataset, load_run_config(preset="grid", overrides=["length=240"]).model,
                                        dataset.layout())
    assert (model.length, model.n_targets, layout.length) == (240, 2, 240)
    assert note.endswith(f"): n_targets=2 ({', '.join(NAMES)})")  # the length was not the data's


def test_an_explicit_target_count_other_than_the_data_is_refused(starr):
    dataset = Dataset(starr)
    model = load_run_config(preset="grid", overrides=["n_targets=1"]).model
    with pytest.raises(ValueError, match=r"2 target column\(s\).*model.n_targets=1; leave n_targets unset .*"
                                         r"--set n_targets=2"):
        resolve_shape(dataset, model, dataset.layout())
    soft_bins = load_run_config(preset="grid", overrides=["loss=soft_bins"]).model
    with pytest.raises(ValueError, match=r"has 2 target column.*soft_bins"):
        resolve_shape(dataset, soft_bins, dataset.layout())


def test_the_presets_give_the_models_of_before_on_dream_data(tmp_path):
    """DREAM rows (17 + 13 nt flanks, meta.json transforms.length 100): the dream2022 and grid
    presets resolve to the very ModelConfig they had when length and n_targets were fixed."""
    rng = np.random.default_rng(0)
    lines = [f"{DREAM_HEAD}{core}{DREAM_TAIL}\t{rng.uniform(0, 17):.3f}"
             for core in (random_dna(rng, 1, int(rng.integers(70, 81)))[0] for _ in range(50))]
    (tmp_path / "dream.txt").write_text("\n".join(lines) + "\n")
    prepare(tmp_path / "dream.txt", tmp_path / "data", progress=False)
    dataset = Dataset(tmp_path / "data")
    before = {  # the presets as they were, with length=100 and n_targets=1 fixed
        "dream2022": ModelConfig(kmer=10, dim=512, heads=8, blocks=4, readout=32, length=100, n_targets=1),
        "grid": ModelConfig(kmer=5, dim=64, heads=2, blocks=1, readout=8, length=100, n_targets=1),
    }
    for name, old in before.items():
        config = run_preset(name)
        assert is_from_data(config.model.length) and is_from_data(config.model.n_targets)
        model, layout, note = resolve_shape(dataset, config.model, dataset.layout(config.data.head, config.data.tail))
        assert model == old and type(model.length) is int and type(model.n_targets) is int
        assert layout == Layout(head=17, tail=13, length=100, pad="n")
        assert "length=100 (meta.json transforms.length after trimming 17 + 13 nt)" in note


def test_a_length_set_in_a_config_file_or_with_set_is_explicit(tmp_path):
    (tmp_path / "run.yaml").write_text("preset: dream2022\nmodel:\n  length: 230\n  dim: 256\n")
    config = load_run_config(str(tmp_path / "run.yaml"))
    assert config.model.length == 230 and not is_from_data(config.model.length)
    assert is_from_data(config.model.n_targets)  # not in the file: the data's
    assert not is_from_data(load_run_config(preset="grid", overrides=["length=100"]).model.length)
    # A config written by a run (config.yaml) holds numbers, read back as explicit values.
    from proformer.config import save_run_config

    save_run_config(run_preset("grid"), tmp_path / "saved.yaml")
    assert yaml.safe_load((tmp_path / "saved.yaml").read_text())["model"]["length"] == 100


def test_the_learning_curve_has_whole_epochs_the_run_name_and_marks_the_mean():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [{"epoch": str(e), "train_mse": "1", "val_mse": "1", "train_reconstruction": "1", "val_pearson": str(0.2 * e),
             "val_spearman": str(0.2 * e), f"val_pearson_{NAMES[0]}": str(0.3 * e), f"val_pearson_{NAMES[1]}": str(0.1 * e),
             f"val_spearman_{NAMES[0]}": "0", f"val_spearman_{NAMES[1]}": "0"} for e in range(3)]
    fig = learning_curve_figure(rows, "starr-run")
    try:
        assert fig._suptitle.get_text() == "starr-run: learning curve (3 epochs)"
        left, right = fig.axes
        for axis in (left, right):
            assert all(float(t).is_integer() for t in axis.get_xticks())
        labels = [line.get_label() for line in right.get_lines()]
        assert "Pearson r (mean of 2 targets)" in labels and f"r {NAMES[0]}" in labels and f"r {NAMES[1]}" in labels
    finally:
        plt.close(fig)
    single = learning_curve_figure([{k: v for k, v in r.items() if "_enrichment" not in k} for r in rows], "one")
    try:
        assert [line.get_label() for line in single.axes[1].get_lines()] == ["Pearson r", "Spearman rho"]
    finally:
        plt.close(single)
