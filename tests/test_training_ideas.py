"""The challenge's training ideas as options: soft bins, singleton flag, RC averaging, plasmid
padding, shifts, AdamW / Lion and the one-cycle schedule."""

import json

import helpers
import numpy as np
import pytest
import torch
from helpers import read_predictions

import proformer
from proformer.config import TrainConfig, load_run_config
from proformer.data.dataset import BatchBuilder, Dataset
from proformer.sequence import Layout
from proformer.data.prepare import prepare
from proformer.inference import Run
from proformer.io.run import RunInfo, TargetInfo
from proformer.model import ModelConfig, Proformer, soft_bin_targets, swap_strands
from proformer.predict import predict
from proformer.sequence import (
    DREAM_HEAD,
    DREAM_TAIL,
    PLASMID_DOWNSTREAM,
    PLASMID_UPSTREAM,
    decode,
    encode,
    encode_padded,
    reverse_complement,
)
from proformer.train import train
from proformer.train.module import ProformerModule, make_optimizer

RNG = np.random.default_rng(7)


def rc(sequence: str) -> str:
    return decode(reverse_complement(encode(sequence)))[0]


def random_dna(n: int) -> str:
    """One random sequence of ``n`` nt from the module's generator (drawn in test order)."""
    return helpers.random_dna(RNG, 1, n)[0]


def dream_table(path, n=400, seed=0):
    """DREAM-shaped rows (head + 80 nt + tail) with mean-bin targets in [0, 17]: about half of
    them integers (singletons), the rest fractional; the target follows the GAT count."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        core = helpers.random_dna(rng, 1, 80 - (i % 3))[0]  # 78-80 nt: odd and even padding
        value = min(17.0, 2.0 * core.count("GAT") + rng.normal(0, 0.5) + 3)
        value = max(0.0, float(round(value)) if i % 2 else round(value, 3))
        rows.append(f"{DREAM_HEAD}{core}{DREAM_TAIL}\t{value}\n")
    path.write_text("".join(rows))
    return path


@pytest.fixture(scope="module")
def dream_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ideas")
    prepare(dream_table(root / "dream.txt"), root / "data", progress=False)
    return root / "data"


# -- soft bins -----------------------------------------------------------------------------


def test_soft_bin_targets_sum_to_one_and_their_expectation_is_the_bin():
    bins = torch.linspace(1, 16, 301)
    targets = soft_bin_targets(bins)
    assert targets.shape == (301, 18) and (targets >= 0).all()
    torch.testing.assert_close(targets.sum(1), torch.ones(301))
    expectation = targets @ torch.arange(18.0)
    assert (expectation - bins).abs().max() < 0.005
    # The mode is the bin holding b + 0.5 (the nearest integer), and the edges absorb the tails.
    clear = ((bins % 1) - 0.5).abs() > 0.01  # not a tie between two bins
    assert targets.argmax(1)[clear].tolist() == (bins[clear] + 0.5).floor().long().tolist()
    edge = soft_bin_targets(torch.tensor([0.0]))[0]
    assert edge[0] == pytest.approx(float(torch.special.ndtr(torch.tensor(1.0))), abs=1e-6)


def test_soft_bin_model_predicts_the_expected_bin_and_learns():
    torch.manual_seed(0)
    config = ModelConfig(kmer=3, dim=16, heads=2, blocks=1, readout=4, length=20, dropout=0.0, mask_ratio=0.0,
                         loss="soft_bins")
    model = Proformer(config)
    assert model.readout.out_features == 18
    codes = torch.randint(0, 4, (64, 20))
    codes = torch.cat([codes, (3 - codes).flip(1)], dim=1)
    targets = (codes[:, :20] == 2).float().sum(1).clamp(max=17)  # G count as a "bin"
    prediction = model.eval()(codes)
    assert prediction.shape == (64,) and ((prediction >= 0) & (prediction <= 17)).all()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(80):
        optimizer.zero_grad()
        loss, parts = model.loss(codes, targets)
        loss.backward()
        optimizer.step()
        first = first if first is not None else parts["target"].item()
    assert parts["target"].item() < first / 3
    assert float(np.corrcoef(model.eval()(codes).detach(), targets)[0, 1]) > 0.9


def test_soft_bins_refuse_targets_that_are_not_bins(tmp_path):
    rows = "".join(f"{random_dna(20)}\t{value}\n" for value in [1.0, 2.5, 40.0] * 20)
    (tmp_path / "t.tsv").write_text(rows)
    prepare(tmp_path / "t.tsv", tmp_path / "data", trim=(0, 0), length=20, progress=False)
    config = load_run_config(preset="grid", overrides=[f"data.path={tmp_path / 'data'}", "length=20", "loss=soft_bins",
                                                      "epochs=1"])
    with pytest.raises(ValueError, match=r"row 2 \(0-based\) has target 40\.0, not a mean sort bin in \[0, 17\]"):
        train(config, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="n_targets=2"):
        ModelConfig(loss="soft_bins", n_targets=2)


# -- singleton flag ------------------------------------------------------------------------


def test_singletons_are_the_rows_with_integer_targets(dream_data):
    dataset = Dataset(dream_data)
    flags = dataset.integer_target()
    targets = np.asarray(dataset.targets[:, 0])
    assert flags.dtype == bool and flags.tolist() == (targets == np.round(targets)).tolist()
    assert 0.3 < flags.mean() < 0.8  # odd rows are integers, some even ones round to one
    layout = dataset.layout()
    rows = np.arange(10)
    training = BatchBuilder(dataset, layout, singleton_flag="measured")[(0, rows)]
    assert training["singleton"].tolist() == flags[rows].astype(float).tolist()
    assert BatchBuilder(dataset, layout, singleton_flag="zero")[(0, rows)]["singleton"].sum() == 0
    assert "singleton" not in BatchBuilder(dataset, layout)[(0, rows)]


def test_singleton_flag_changes_the_prediction_only_when_set():
    torch.manual_seed(0)
    model = Proformer(ModelConfig(kmer=3, dim=16, heads=2, blocks=1, readout=4, length=10, singleton_flag=True)).eval()
    codes = torch.randint(0, 4, (4, 20))
    flag = torch.tensor([1.0, 0.0, 1.0, 0.0])
    with torch.no_grad():
        base, flagged = model(codes), model(codes, flag)
    torch.testing.assert_close(model(codes, torch.zeros(4)), base)  # 0 = prediction time
    assert (flagged - base).abs()[[0, 2]].min() > 0 and (flagged - base)[[1, 3]].abs().max() == 0


# -- reverse-complement averaging ----------------------------------------------------------


def predict_codes(model: Proformer, codes: np.ndarray, rc_average: bool = False) -> np.ndarray:
    """The model's own output ``(n,)`` for model codes, as a :class:`proformer.inference.Run` predicts them."""
    info = RunInfo(model=model.config, layout=Layout(head=0, tail=0, length=model.config.length),
                   target=TargetInfo(names=["y"], mean=[0.0], std=[1.0], standardized=True))
    return Run(model, info, rc_average=rc_average).predict_codes(codes, standardized=True)[:, 0]


def test_rc_averaging_gives_a_sequence_and_its_reverse_complement_one_prediction(tmp_path, dream_data):
    torch.manual_seed(0)
    model = Proformer(ModelConfig(kmer=3, dim=16, heads=2, blocks=1, readout=4, length=100)).eval()
    codes, lengths = encode_padded([random_dna(80) for _ in range(6)])
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
    sequences = [DREAM_HEAD + random_dna(80) + DREAM_TAIL for _ in range(5)]
    cores = [s[17:-13] for s in sequences]
    (tmp_path / "in.txt").write_text("".join(f"{DREAM_HEAD}{c}{DREAM_TAIL}\n{DREAM_HEAD}{rc(c)}{DREAM_TAIL}\n"
                                             for c in cores))
    predict(tmp_path / "run", tmp_path / "in.txt", tmp_path / "out.tsv", progress=False)
    values = read_predictions(tmp_path / "out.tsv")
    np.testing.assert_allclose(values[0::2], values[1::2], atol=1e-5)
    predict(tmp_path / "run", tmp_path / "in.txt", tmp_path / "plain.tsv", progress=False, rc_average=False)
    plain = read_predictions(tmp_path / "plain.tsv")
    assert np.abs(plain[0::2] - plain[1::2]).max() > 1e-5


# -- plasmid padding and shifts ------------------------------------------------------------


def test_plasmid_flanks_are_the_shared_plasmid_sequence(shared_dir):
    plasmid = json.loads((shared_dir / "data" / "dream2022" / "plasmid.json").read_text())
    start, end = plasmid.index("N"), plasmid.rindex("N") + 1
    assert end - start == 80 and set(plasmid[start:end]) == {"N"}
    assert plasmid[start - len(PLASMID_UPSTREAM):start] == PLASMID_UPSTREAM
    assert plasmid[end:end + len(PLASMID_DOWNSTREAM)] == PLASMID_DOWNSTREAM
    assert PLASMID_UPSTREAM.endswith(DREAM_HEAD) and PLASMID_DOWNSTREAM.startswith(DREAM_TAIL)


def test_plasmid_padding_places_the_exact_flanks():
    cores = [random_dna(80), random_dna(77), random_dna(100), random_dna(12)]
    codes, lengths = encode_padded([DREAM_HEAD + c + DREAM_TAIL for c in cores])
    laid = Layout(head=17, tail=13, length=100, pad="plasmid").apply(codes, lengths)
    assert laid.shape == (4, 200)
    for core, row in zip(cores, laid):
        left = (100 - len(core)) // 2
        right = 100 - len(core) - left
        forward = decode(row[:100])[0]
        expected = PLASMID_UPSTREAM[len(PLASMID_UPSTREAM) - left:] + core + PLASMID_DOWNSTREAM[:right]
        assert forward == expected
        assert decode(row[100:])[0] == rc(expected)
    # 80 nt: the trimmed head and tail come back as the padding, i.e. the measured 110-nt construct's centre.
    assert decode(laid[0, :100])[0] == (DREAM_HEAD + cores[0] + DREAM_TAIL)[7:107]
    n_padded = Layout(head=17, tail=13, length=100).apply(codes, lengths)
    assert decode(n_padded[1, :100])[0] == "N" * 11 + cores[1] + "N" * 12


def test_shifts_stay_in_the_padding_are_keyed_and_cover_both_directions(dream_data):
    dataset = Dataset(dream_data)
    layout = dataset.layout()
    rows = np.arange(len(dataset))
    centred = BatchBuilder(dataset, layout)[(0, rows)]["codes"].numpy()
    builder = BatchBuilder(dataset, layout, shift=3, seed=1)
    shifted = builder[(0, rows)]["codes"].numpy()
    offsets = []
    for a, b, n in zip(centred[:, :100], shifted[:, :100], dataset.lengths - 30):
        start_a, start_b = int(np.argmax(a != 4)), int(np.argmax(b != 4))
        assert np.array_equal(a[start_a:start_a + n], b[start_b:start_b + n])  # the sequence itself is intact
        assert 0 <= start_b and start_b + n <= 100
        offsets.append(start_b - start_a)
    assert set(offsets) == set(range(-3, 4))
    # The same (seed, epoch, row) shifts the same way in any batch order; another epoch differs.
    reordered = builder[(0, rows[::-1])]["codes"].numpy()[::-1]
    assert np.array_equal(reordered, shifted)
    assert not np.array_equal(builder[(1, rows)]["codes"].numpy(), shifted)


# -- optimisers and schedules --------------------------------------------------------------


@pytest.mark.parametrize("optimizer, lr, weight_decay", [("adam", 3e-3, 0.0), ("adamw", 3e-3, 0.01), ("lion", 3e-4, 0.1)])
def test_each_optimizer_fits_a_planted_target(optimizer, lr, weight_decay):
    torch.manual_seed(0)
    codes = torch.randint(0, 4, (64, 20))
    codes = torch.cat([codes, (3 - codes).flip(1)], dim=1)
    planted = (codes[:, :20].unfold(1, 3, 1) == torch.tensor([2, 0, 3])).all(-1).sum(1).float()
    target = (planted - planted.mean()) / planted.std()
    model = Proformer(ModelConfig(kmer=3, dim=32, heads=2, blocks=1, readout=4, length=20, dropout=0.0, mask_ratio=0.0))
    opt = make_optimizer(model.parameters(), TrainConfig(optimizer=optimizer, weight_decay=weight_decay), lr)
    expected = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(optimizer)
    assert expected is None or type(opt) is expected
    losses = []
    for _ in range(150):
        opt.zero_grad()
        _, parts = model.loss(codes, target)
        parts["target"].backward()
        opt.step()
        losses.append(parts["target"].item())
    assert losses[-1] < losses[0] / 5, (optimizer, losses[0], losses[-1])


def test_one_cycle_rises_to_the_peak_then_falls():
    module = ProformerModule(ModelConfig(dim=16, heads=2).to_dict(),
                             vars(TrainConfig(schedule="one_cycle", optimizer="adamw", lr=1e-2, epochs=2)),
                             steps_per_epoch=50)
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = int(np.argmax(rates))
    assert rates[peak] == pytest.approx(1e-2) and 25 <= peak <= 35  # 30 % of 100 steps
    assert rates[0] == pytest.approx(1e-2 / 25) and rates[-1] < 1e-5


def test_option_values_are_checked():
    with pytest.raises(ValueError, match="pad='x'"):
        load_run_config(preset="grid", overrides=["data.pad=x"])
    with pytest.raises(ValueError, match="shift=-1"):
        load_run_config(preset="grid", overrides=["data.shift=-1"])
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        load_run_config(preset="grid", overrides=["train.optimizer=sgd"])
    # Either order of --set works; Adam refuses a weight decay when the optimizer is built.
    config = load_run_config(preset="grid", overrides=["train.weight_decay=0.01", "train.optimizer=adamw"])
    assert make_optimizer(torch.nn.Linear(2, 1).parameters(), config.train, 1e-3).defaults["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="weight_decay=0.01 needs optimizer=adamw or lion"):
        make_optimizer(torch.nn.Linear(2, 1).parameters(), TrainConfig(weight_decay=0.01), 1e-3)


def test_all_options_train_save_and_predict_together(dream_data, tmp_path):
    overrides = [f"data.path={dream_data}", "dim=16", "heads=2", "readout=4", "epochs=2", "batch_size=64",
                 "loss=soft_bins", "data.singleton_flag=true", "data.rc_average=true", "data.pad=plasmid",
                 "data.shift=5", "train.optimizer=lion", "train.lr=3e-4", "train.weight_decay=0.1",
                 "train.schedule=one_cycle"]
    result = train(load_run_config(preset="grid", overrides=overrides), tmp_path / "run", progress=False)
    assert np.isfinite(result["best"]["val_pearson"])
    loaded = proformer.load(tmp_path / "run", "cpu")
    model, info = loaded.model, loaded.info
    assert model.config.singleton_flag and model.config.loss == "soft_bins"
    assert info.layout.pad == "plasmid" and info.target.standardized is False
    (tmp_path / "in.txt").write_text("".join(DREAM_HEAD + random_dna(80) + DREAM_TAIL + "\n" for _ in range(7)))
    predict(tmp_path / "run", tmp_path / "in.txt", tmp_path / "out.tsv", progress=False)
    values = read_predictions(tmp_path / "out.tsv")
    assert len(values) == 7 and all(0 <= v <= 17 for v in values)


def test_proformer_plus_is_the_grid_model_with_what_the_study_chose():
    plus, grid = load_run_config(preset="proformer-plus"), load_run_config(preset="grid")
    assert plus.model == grid.model and plus.data == grid.data
    assert (plus.train.optimizer, plus.train.weight_decay, plus.train.schedule) == ("adamw", 0.01, "one_cycle")
    from proformer.experiments.grids import TRAINING_IDEAS

    chosen = dict((name, overrides) for name, _, overrides in TRAINING_IDEAS)["adamw"]
    assert load_run_config(preset="grid", overrides=list(chosen)).train == plus.train
