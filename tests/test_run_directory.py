"""A run directory as a whole (issue 25): outputs that never destroy what is there, and a run that
is checked as one thing when it is read.

Each test re-tries a finding of a hostile replay: a checkpoint that a full disk truncated where
--resume looks, a config.json whose parts disagree (with each other or with the weights), an
oracle that predicts another target or sees another window, a weights.pt that is a pickle
running code; and a run trained before safetensors, which must predict as it did.
"""

import dataclasses
import errno
import json
import os
import pickle

import numpy as np
import pytest
import torch
from helpers import (
    TINY_MODEL,
    TINY_RUN_HEAD,
    TINY_RUN_LENGTH,
    TINY_RUN_TAIL,
    as_overrides,
    planted_tsv,
    random_dna,
    tiny_run_info,
    write_tiny_run,
)

import proformer
from proformer.cli import main
from proformer.config import load_run_config
from proformer.data.prepare import prepare
from proformer.export import check_target
from proformer.interpret.design import design, run_design
from proformer.io.run import RunInfo, RunWriteError, TargetInfo, read_run_info, read_weights, write_run_model
from proformer.model import Proformer
from proformer.sequence import Layout, encode_padded
from proformer.train import train
from proformer.train.checkpoint import AtomicCheckpointIO

LENGTH = 24
WHOLE = TINY_RUN_HEAD + TINY_RUN_LENGTH + TINY_RUN_TAIL  # a sequence the tiny run sees whole: 23 nt


def one_line(message: str) -> str:
    assert "\n" not in message.strip(), message
    return message


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    source = planted_tsv(root / "planted.tsv", 200, LENGTH, rule=lambda s: 2.0 * s.count("GAT"), noise=0.1, seed=0,
                         digits=5)
    prepare(source, root / "planted", trim=(0, 0), length=LENGTH, progress=False)
    return root / "planted"


# -- 1. checkpoints/last.ckpt written atomically -------------------------------------------------


def test_a_failed_checkpoint_write_keeps_the_last_good_one_and_names_it(dataset_dir, tmp_path, monkeypatch, one_thread):
    """A full disk while epoch 2's checkpoint is saved: one error naming RUN/checkpoints/last.ckpt
    and the space needed and free, epoch 1's last.ckpt still there and loadable, no temporary
    left, and --resume continues from it. (Old code: Lightning's own error, ``[Errno 28] No space
    left on device`` naming no file, so the assertion on the path fails.)"""
    run_dir = tmp_path / "run"
    settings = [f"data.path={dataset_dir}", f"length={LENGTH}", "data.split=hash:0.8", "batch_size=64",
                "lr=3e-3", "epochs=2", *as_overrides(TINY_MODEL)]
    config = load_run_config(preset="grid", overrides=settings)
    real_save, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(OSError) as caught:
        train(config, run_dir, progress=False)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    message = one_line(str(caught.value))
    assert str(checkpoint) in message, message
    assert "no space left" in message.lower() and "needs about" in message and f"free in {checkpoint.parent}" in message
    assert ".tmp" not in message and "--resume" in message
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.setattr(torch, "save", real_save)
    kept = torch.load(checkpoint, weights_only=True)
    assert kept["epoch"] == 0  # the first epoch's, whole
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.ckpt"]  # no temporary left
    assert read_weights(run_dir)  # the best model (epoch 1) is whole too
    resumed = train(config, run_dir, resume=True, progress=False)
    assert resumed["epochs_run"] == 2


def test_the_checkpoint_io_replaces_the_file_only_once_it_is_on_disk(tmp_path, monkeypatch):
    """A write that fails at fsync (the data did not reach the disk) leaves the previous file as it
    was and no temporary, and the error names the target. (Old code: no such plugin; Lightning's
    IO neither writes beside the target nor fsyncs.)"""
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO(tmp_path)
    io.save_checkpoint({"epoch": 0, "w": torch.ones(1000)}, path)
    before = path.read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(RunWriteError) as caught:
        io.save_checkpoint({"epoch": 1, "w": torch.zeros(1000)}, path)
    monkeypatch.undo()
    message = one_line(str(caught.value))
    assert message.startswith(f"{path}: cannot write the checkpoint (")
    assert "no space left" in message.lower() and "it needs about " in message
    assert f"free in {path.parent}" in message and f"--out {tmp_path} --resume" in message
    assert ".tmp" not in message
    assert path.read_bytes() == before and torch.load(path, weights_only=True)["epoch"] == 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def test_a_failed_write_of_the_best_model_keeps_the_previous_one(tmp_path, monkeypatch):
    """write_run_model on a full disk: the previous weights and config.json stay, the error names
    the weights file of the run. (Old code: written without fsync, so no error here: pytest.raises fails.)"""
    run = write_tiny_run(tmp_path / "run", seed=0)
    before = {name: (run / name).read_bytes() for name in ("weights.safetensors", "config.json")}
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(RunWriteError) as caught:
        write_run_model(run, Proformer(tiny_run_info().model).state_dict(), tiny_run_info())
    monkeypatch.undo()
    message = one_line(str(caught.value))
    assert message.startswith(f"{run / 'weights.safetensors'}: cannot write the best model's weights.safetensors")
    assert {name: (run / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "weights.safetensors"]


# -- 2. a run directory is checked as a whole ---------------------------------------------------


def edit_config(run, change) -> None:
    values = json.loads((run / "config.json").read_text())
    change(values)
    (run / "config.json").write_text(json.dumps(values))


@pytest.mark.parametrize("change, field, value", [
    (lambda c: c["target"].update(names=["a"]), "target.names", "['a']"),
    (lambda c: c["target"].update(mean=[1.0]), "target.mean", "[1.0]"),
    (lambda c: c["target"].update(std=[2.0, 2.0, 2.0]), "target.std", "[2.0, 2.0, 2.0]"),
    (lambda c: c["target"].update(std=[2.0, 0.0]), "target.std[1]", "0.0"),
    (lambda c: c["layout"].update(length=TINY_RUN_LENGTH + 4), "layout.length", str(TINY_RUN_LENGTH + 4)),
])
def test_config_json_whose_fields_disagree_is_one_line_naming_the_file_and_field(tmp_path, change, field, value):
    """A config.json whose target names (or statistics) disagree with model.n_targets, or whose
    layout.length is not model.length. (Old code: names of the wrong count loaded and predicted
    under made-up column names prediction_0, ...; so pytest.raises fails.)"""
    run = write_tiny_run(tmp_path / "run", n_targets=2)
    edit_config(run, change)
    with pytest.raises(ValueError) as caught:
        proformer.load(run, "cpu")
    message = one_line(str(caught.value))
    assert message.startswith(f"{run / 'config.json'}: {field} ") and value in message, message
    assert main(["predict", "--model", str(run), "--input", str(write_input(tmp_path)), "--out",
                 str(tmp_path / "p.tsv"), "--no-progress"]) == 2
    assert not (tmp_path / "p.tsv").exists()


def write_input(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("".join(s + "\n" for s in random_dna(np.random.default_rng(0), 3, WHOLE)))
    return path


@pytest.mark.parametrize("field, value", [("head", -1), ("tail", "1"), ("length", 2.5), ("pad", "plastic"),
                                          ("head", True)])
def test_a_bad_layout_value_names_the_file_the_field_and_the_value(tmp_path, field, value):
    """(Old code: Layout took head=-1, tail="1", length=2.5 as given and failed, or predicted
    something, later without naming config.json: pytest.raises or the message check fails.)"""
    run = write_tiny_run(tmp_path / "run")
    edit_config(run, lambda c: c["layout"].update({field: value}))
    with pytest.raises(ValueError) as caught:
        read_run_info(run)
    message = one_line(str(caught.value))
    assert message.startswith(f"{run / 'config.json'}: layout.{field} is {value!r}"), message


@pytest.mark.parametrize("field, value, held", [("dim", 16, 8), ("blocks", 2, 1), ("kmer", 4, 3)])
def test_weights_that_do_not_match_config_json_are_one_line_naming_both_files(tmp_path, monkeypatch, field, value,
                                                                               held):
    """A config.json whose width, blocks or k-mer disagree with the weights: one short line naming
    both files and the field, not torch's state_dict listing. (Old code: a RuntimeError of ~28
    lines, "Error(s) in loading state_dict for Proformer", so pytest.raises(ValueError) fails.)"""
    monkeypatch.chdir(tmp_path)
    run = write_tiny_run(tmp_path / "run").relative_to(tmp_path)
    edit_config(run, lambda c: c["model"].update({field: value}))
    with pytest.raises(ValueError) as caught:
        proformer.load(run, "cpu")
    message = one_line(str(caught.value))
    assert len(message) < 400, message
    assert message.startswith(f"{run / 'weights.safetensors'} does not match {run / 'config.json'}: "
                              f"model.{field} is {value} but the weights hold {held} ("), message
    assert "state_dict" not in message and "Missing key" not in message


# -- 3. --oracle gets the checks of an ensemble member -----------------------------------------


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


def test_an_oracle_that_predicts_another_target_is_refused_in_one_line(tmp_path):
    """The design's target must be one the oracle predicts, by name. (Old code: the oracle's first
    column judged the model's first, whatever their names: no error, so pytest.raises fails.)"""
    model = proformer.load(run_with(tmp_path / "model", seed=0, names=["lenti", "yeast"]), "cpu")
    other = proformer.load(run_with(tmp_path / "other", names=["atac"]), "cpu")
    with pytest.raises(ValueError) as caught:
        design(model, SEQUENCES, "high", 1, oracle=other)
    message = one_line(str(caught.value))
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
    assert "predicts 1 target(s) (atac)" in one_line(str(caught.value))
    assert not (tmp_path / "out.tsv").exists()


def test_an_oracle_whose_window_would_cut_a_sequence_is_refused_in_one_line(tmp_path, recwarn):
    """An oracle with a shorter window than the model would judge sequences cut to its centre.
    (Old code: a RuntimeWarning and the cut sequences judged: no error, pytest.raises fails.)
    An oracle with other flanks that still sees every sequence whole is taken."""
    model = proformer.load(run_with(tmp_path / "model", seed=0), "cpu")
    short = proformer.load(run_with(tmp_path / "short", length=TINY_RUN_LENGTH - 4), "cpu")
    with pytest.raises(ValueError) as caught:
        design(model, SEQUENCES, "high", 1, oracle=short, where=["in.txt:1", "in.txt:2"])
    message = one_line(str(caught.value))
    assert f"the oracle {tmp_path / 'short'} takes sequences up to {WHOLE - 4} nt" in message
    assert f"in.txt:1 has {WHOLE} nt" in message and "same sequence length" in message
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # refused before any cut
    flanks = proformer.load(run_with(tmp_path / "flanks", head=0, tail=0, length=TINY_RUN_LENGTH + 3), "cpu")
    designs = design(model, SEQUENCES, "high", 1, oracle=flanks)
    assert all(d.oracle_predictions is not None for d in designs)


# -- 4. weights: safetensors, and a weights.pt that runs code -----------------------------------


class WritesMarker:
    """Unpickled with the full pickle machinery, this writes a file: the 'code' of a crafted weights.pt."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_weights_pt_that_would_run_code_is_refused_without_torchs_unsafe_advice(tmp_path):
    """(Old code: refused, but the message quoted torch's "Re-running torch.load with weights_only
    set to False will likely succeed": the assertion on "weights_only" fails.)"""
    run = write_tiny_run(tmp_path / "run")
    (run / "weights.safetensors").unlink()
    marker = tmp_path / "code-ran"
    state = dict(Proformer(tiny_run_info().model).state_dict())
    state["payload"] = WritesMarker(marker)
    torch.save(state, run / "weights.pt")  # torch's zip format, as an old run's weights.pt is
    for load in (lambda: proformer.load(run, "cpu"), lambda: read_weights(run)):
        with pytest.raises(ValueError) as caught:
            load()
        message = one_line(str(caught.value))
        assert message.startswith(f"{run / 'weights.pt'} is not a plain state_dict")
        assert "weights_only" not in message and "retrain" not in message and "train the model again" in message
    assert not marker.exists()
    with open(run / "weights.pt", "wb") as handle:  # a bare pickle, not torch's zip
        pickle.dump({"w": WritesMarker(marker)}, handle)
    with pytest.raises(ValueError, match="is not a plain state_dict") as caught:
        proformer.load(run, "cpu")
    assert "weights_only" not in str(caught.value) and not marker.exists()


def test_a_run_trained_before_safetensors_predicts_the_same_and_so_does_its_conversion(tmp_path):
    """A run written the old way (torch.save of the state_dict as weights.pt + config.json) loads
    and predicts what the model itself computes; converted to weights.safetensors it predicts
    exactly the same. (Old code: the conversion is not read, so load fails with weights.pt gone.)"""
    info = tiny_run_info(n_targets=2, mean=[1.0, -3.0], std=[2.0, 0.5])
    torch.manual_seed(7)
    model = Proformer(info.model).eval()
    run = tmp_path / "old"
    run.mkdir()
    torch.save(model.state_dict(), run / "weights.pt")
    (run / "config.json").write_text(json.dumps(info.to_dict(), indent=2) + "\n")

    sequences = random_dna(np.random.default_rng(1), 9, WHOLE) + random_dna(np.random.default_rng(2), 3, WHOLE - 6)
    codes, lengths = encode_padded(sequences)
    with torch.no_grad():
        own = model(torch.from_numpy(info.layout.apply(codes, lengths))).double().numpy()
    expected = own * np.array(info.target.std) + np.array(info.target.mean)

    old = proformer.load(run, "cpu").predict(sequences)
    np.testing.assert_allclose(old, expected, rtol=1e-12, atol=1e-12)

    from safetensors.torch import save_file

    save_file(read_weights(run), run / "weights.safetensors")  # preferred over weights.pt when both exist
    (run / "weights.pt").rename(tmp_path / "weights.pt.bak")
    converted = proformer.load(run, "cpu").predict(sequences)
    assert np.array_equal(converted, old)

    # A run trained on (resumed) after the change: write_run_model leaves weights.safetensors only.
    (tmp_path / "weights.pt.bak").rename(run / "weights.pt")
    write_run_model(run, model.state_dict(), info)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "weights.safetensors"]
    assert np.array_equal(proformer.load(run, "cpu").predict(sequences), old)


def test_export_refuses_every_file_of_the_run_as_its_target(tmp_path):
    """(Old code: weights.safetensors and checkpoints/last.ckpt were not among the run's files, so
    an export there was not refused: pytest.raises fails for them.)"""
    run = write_tiny_run(tmp_path / "run")
    for name in ("config.json", "weights.safetensors", "weights.pt", "checkpoints/last.ckpt"):
        with pytest.raises(ValueError, match=rf"is the run's {name}: exporting there would destroy the model"):
            check_target(run, run / name)
    check_target(run, run / "model.onnx")
