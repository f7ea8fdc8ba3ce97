"""Tests of :mod:`proformer.train.loggers`."""

from __future__ import annotations

import sys

import pytest
from helpers import TINY_MODEL, as_overrides, planted_tsv, read_csv

from proformer.cli import main
from proformer.config import load_run_config
from proformer.config.run import LOGGERS
from proformer.data.prepare import prepare
from proformer.train import train
from proformer.train.history import metric_columns

LENGTH = 24


TINY_RUN = {**TINY_MODEL, "data.split": "hash:0.8", "batch_size": 64, "epochs": 3, "lr": 3e-3}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    source = planted_tsv(root / "planted.tsv", 300, LENGTH, rule=lambda s: 2.0 * s.count("GAT") + s.count("C") / LENGTH,
                         noise=0.1, seed=0, digits=5)
    prepare(source, root / "planted", trim=(0, 0), length=LENGTH, progress=False)
    return root / "planted"


def settings(dataset_dir, *more):
    return [f"data.path={dataset_dir}", f"length={LENGTH}", *as_overrides(TINY_RUN), *more]


def scalars(directory):
    """Every scalar of the TensorBoard event files under ``directory``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.parametrize("logger", ["tensorboard", "csv,tensorboard"])
def test_tensorboard_gets_metrics_csv_figures_once_per_epoch(dataset_dir, tmp_path, one_thread, logger):
    run_dir = tmp_path / "run"
    train(load_run_config(preset="grid", overrides=settings(dataset_dir, f"train.logger={logger}")), run_dir,
          progress=False)
    rows = read_csv(run_dir / "metrics.csv")  # written either way, with its usual columns
    assert tuple(rows[0]) == metric_columns(["expression"])
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    logged = scalars(run_dir / "tensorboard")
    assert set(logged) == set(metric_columns(["expression"])) - {"step"}  # nothing per step, no placeholders
    steps = [int(r["step"]) for r in rows]
    for column in logged:
        assert [step for step, _ in logged[column]] == steps, column  # one value per epoch, at its step
        assert [value for _, value in logged[column]] == pytest.approx([float(r[column]) for r in rows], rel=1e-6,
                                                                       abs=1e-7), column
    assert float(rows[-1]["val_pearson"]) == pytest.approx(logged["val_pearson"][-1][1], rel=1e-6)


def test_an_unknown_logger_is_a_one_line_error_listing_the_valid_ones(dataset_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = [f"--set={o}" for o in settings(dataset_dir, "train.logger=csv,tensorbord")]
    status = main(["train", "--out", str(run_dir), "--no-progress", *args])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "unknown logger tensorbord" in err and ", ".join(LOGGERS) in err
    assert not run_dir.exists()


@pytest.mark.parametrize("logger, package", [("wandb", "wandb"), ("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_a_logger_without_its_package_is_a_one_line_error_before_training(dataset_dir, tmp_path, monkeypatch, capsys,
                                                                         logger, package):
    for module in ("wandb", "mlflow", "tensorboard", "tensorboardX"):
        monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    run_dir = tmp_path / "run"
    args = [f"--set={o}" for o in settings(dataset_dir, f"train.logger=csv,{logger}")]
    status = main(["train", "--out", str(run_dir), "--no-progress", *args])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert f"pip install {package}" in err and "Traceback" not in err
    assert not run_dir.exists()  # nothing was written


def test_metrics_csv_logger_replaces_an_epoch_run_again_and_drops_the_epochs_a_resume_repeats(tmp_path, monkeypatch):
    from proformer.train import history
    from proformer.train.loggers import MetricsCSV

    columns = metric_columns(["a", "b"])
    logger = MetricsCSV(tmp_path, columns)
    for epoch, loss in ((0, 3.0), (1, 2.0), (1, 1.5), (2, 1.0)):
        logger.log_metrics({"epoch": epoch, "train_loss": loss, "val_pearson_a": 0.5}, step=10 * (epoch + 1))
    rows = read_csv(tmp_path / "metrics.csv")
    assert tuple(rows[0]) == columns
    assert [(r["epoch"], r["step"], r["train_loss"]) for r in rows] == [("0", "10", "3.0"), ("1", "20", "1.5"),
                                                                        ("2", "30", "1.0")]
    logger.drop_from(1)
    assert [r["epoch"] for r in read_csv(tmp_path / "metrics.csv")] == ["0"]
    # Written atomically: a write that fails leaves the file as it was.
    before = (tmp_path / "metrics.csv").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(history.csv.DictWriter, "writerows", disk_full)
    with pytest.raises(OSError):
        logger.log_metrics({"epoch": 1, "train_loss": 0.5}, step=20)
    assert (tmp_path / "metrics.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]
