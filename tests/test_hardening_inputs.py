"""Issue 13, bad inputs: score, prepare, sweep ids and download refuse them with a clear message.

Each test here failed on the code before the fix (checked against the previous commit's files).
Only the full-size score checks need ../shared (the ``dream_dir`` fixture); the rest run on the
committed fixtures or on files written here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA

from proformer.metrics import pearson
from proformer.score import N_TEST, load_predictions, load_truth, score, score_public

MINI = DATA / "dream_mini"

# --------------------------------------------------------------------------------------------
# 1. score: the sequence column, duplicated rows, overflow
# --------------------------------------------------------------------------------------------

SEQUENCES = ["ACGT", "TTTT", "GGCA", "ACGA", "CCCC"]
VALUES = [0.5, -1.25, 3.0, 0.0, 2.5]


def _tsv(path: Path, sequences: list[str], values: list[float]) -> Path:
    path.write_text("".join(f"{s}\t{v}\n" for s, v in zip(sequences, values)))
    return path


def test_score_tsv_shuffled_rows_are_refused_with_the_first_mismatching_line(tmp_path):
    shuffled = [SEQUENCES[0], SEQUENCES[2], SEQUENCES[1], SEQUENCES[3], SEQUENCES[4]]
    path = _tsv(tmp_path / "pred.tsv", shuffled, VALUES)
    with pytest.raises(ValueError, match=r"pred.tsv: line 2: the sequence column does not match test row 2"):
        load_predictions(path, n_test=5, sequences=SEQUENCES)
    truth = _tsv(tmp_path / "truth.tsv", shuffled, VALUES)
    with pytest.raises(ValueError, match=r"truth.tsv: line 2: the sequence column does not match"):
        load_truth(truth, n_test=5, sequences=SEQUENCES)
    # In test order it loads.
    ordered = _tsv(tmp_path / "ok.tsv", SEQUENCES, VALUES)
    assert load_predictions(ordered, n_test=5, sequences=SEQUENCES).tolist() == VALUES
    assert load_truth(ordered, n_test=5, sequences=SEQUENCES).tolist() == VALUES


def test_score_tsv_duplicated_rows_are_refused_even_without_the_test_sequences(tmp_path):
    doubled = SEQUENCES[:4] + [SEQUENCES[1]]
    path = _tsv(tmp_path / "pred.tsv", doubled, VALUES)
    for load in (load_predictions, load_truth):
        with pytest.raises(ValueError, match=r"pred.tsv: line 5: duplicate row, .* already given on line 2"):
            load(path, n_test=5)


def test_score_full_size_shuffled_tsv_and_truth_are_refused(dream_dir, tmp_path):
    """The real 71,103-row test set: a shuffled TSV used to score 0.0128 without a word."""
    sequences = (dream_dir / "test_sequences.txt").read_text().split()
    assert len(sequences) == N_TEST
    values = np.random.default_rng(0).normal(size=N_TEST)
    order = np.random.default_rng(1).permutation(N_TEST)
    shuffled = _tsv(tmp_path / "shuffled.tsv", [sequences[i] for i in order], values.tolist())
    with pytest.raises(ValueError, match=r"shuffled.tsv: line \d+: the sequence column does not match"):
        score(shuffled, dream_dir)
    good = _tsv(tmp_path / "good.tsv", sequences, values.tolist())
    with pytest.raises(ValueError, match=r"shuffled.tsv: line \d+: the sequence column"):
        score(good, dream_dir, split="private", truth=shuffled)
    duplicated = sequences[:-1] + [sequences[0]]
    dup = _tsv(tmp_path / "dup.tsv", duplicated, values.tolist())
    with pytest.raises(ValueError, match=rf"dup.tsv: line {N_TEST}: duplicate row, sequence .* already given on line 1"):
        score(dup, dream_dir)


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


# --------------------------------------------------------------------------------------------
# 2. prepare: numbers are data formats, not Python syntax
# --------------------------------------------------------------------------------------------

from proformer.data.prepare import InputError, prepare
from proformer.sequence import DREAM_HEAD, DREAM_TAIL

GOOD = DREAM_HEAD + "ACGT" * 20 + DREAM_TAIL


@pytest.mark.parametrize(
    "target, hint",
    [
        ("1_000", "'_' digit separator"),
        ("\uff11\uff12", "full-width digits"),  # "１２"
        ("\u0661\u0662", "non-ASCII"),  # Arabic-Indic digits
    ],
)
@pytest.mark.parametrize("layout", ["dream", "table", "csv_quoted", "fasta"])
def test_prepare_refuses_python_number_syntax_naming_file_line_and_value(tmp_path, target, hint, layout):
    kwargs = {}
    if layout == "dream":
        text = f"{GOOD}\t1\n{GOOD}\t{target}\n{GOOD}\t3\n"
        name, line = "in.txt", 2
    elif layout == "table":
        text = f"seq,y\n{GOOD},1\n{GOOD},{target}\n"
        name, line, kwargs = "in.csv", 3, {"seq_col": "seq", "target_cols": ["y"]}
    elif layout == "csv_quoted":  # a quote sends the chunk through the csv module
        text = f'seq,y\n"{GOOD}",1\n{GOOD},{target}\n'
        name, line, kwargs = "in.csv", 3, {"seq_col": "seq", "target_cols": ["y"]}
    else:
        text = f">a 1\n{GOOD}\n>b 2\n{GOOD}\n>c {target}\n{GOOD}\n"
        name, line = "in.fa", 5
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as error:
        prepare(path, tmp_path / "ds", progress=False, **kwargs)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert hint in message and target in message, message
    assert not (tmp_path / "ds").exists()


def test_plain_numbers_still_read_in_bulk_and_one_by_one():
    from proformer.io.numbers import parse_number, parse_numbers

    texts = [b"12", b" 1.5 ", b"-1.25e-1", b"+.5", b"5.", b"1E3", b"nan", b"-inf"]
    values, bad = parse_numbers(texts)
    assert values[:6].tolist() == [12.0, 1.5, -0.125, 0.5, 5.0, 1000.0]
    assert bad.tolist() == [False] * 6 + [True, True]
    for text in (b"1_000", "\uff11", b"0x10", b"1d5", b"--1", b"", b"."):
        assert parse_number(text) is None, text


# --------------------------------------------------------------------------------------------
# 3. prepare: no staging folder left behind; the dataset is replaced as a whole
# --------------------------------------------------------------------------------------------

import os
import re
import signal
import subprocess
import sys
import time

from proformer.data.prepare import OutputLocked
from proformer.io.dataset import aside, read_meta, validate


def _dream_input(path: Path, n: int, value: float) -> Path:
    path.write_text("".join(f"{GOOD}\t{value + i}\n" for i in range(n)))
    return path


def _staging(out: Path) -> list[Path]:
    """The staging folders of prepare runs into ``out``: ``.ds.prepare-XXXXXXXX`` beside or inside it."""
    return [p for p in (*out.parent.iterdir(), *(out.iterdir() if out.is_dir() else ()))
            if re.fullmatch(rf"\.{re.escape(out.name)}\.prepare-[a-z0-9_]{{8}}", p.name)]


def test_prepare_removes_the_staging_folders_of_killed_runs_only(tmp_path):
    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    beside = tmp_path / ".ds.prepare-abc12345"  # a killed run's, beside the dataset
    inside = out / ".ds.prepare-k3j4h5g6"  # one from a run whose output's parent was not writable
    other = tmp_path / ".other.prepare-zzz99999"  # a run into another output: not this run's to judge
    lookalike = tmp_path / ".ds.prepare-x.prepare-abc12345"  # a staging folder of the output "ds.prepare-x"
    for folder in (beside, inside, other, lookalike):
        folder.mkdir()
        (folder / "codes.npy").write_bytes(b"x" * 1000)
    prepare(_dream_input(tmp_path / "b.txt", 4, 2.0), out, progress=False)
    assert not beside.exists() and not inside.exists()
    assert other.exists() and lookalike.exists()
    assert read_meta(out)["rows_kept"] == 4
    assert _staging(out) == []


# A test run started in the background (``pytest &`` in a non-interactive shell) hands its children
# SIGINT ignored, and Python then never raises KeyboardInterrupt: the child restores the default.
_SLOW_PREPARE = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import proformer.data.prepare as p
real = p._process
def slow(*args, **kwargs):
    real(*args, **kwargs)
    print("staged", flush=True)
    time.sleep(120)
p._process = slow
p.prepare(sys.argv[1], sys.argv[2], progress=False)
"""


def _slow_prepare(source: Path, out: Path) -> subprocess.Popen:
    """A prepare into ``out`` that has staged its first rows and sleeps (holding the lock)."""
    child = subprocess.Popen([sys.executable, "-c", _SLOW_PREPARE, str(source), str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if child.stdout.readline().strip() != "staged":
        child.kill()
        raise AssertionError(f"the slow prepare did not start: {child.communicate()[1]}")
    return child


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_prepare_stopped_by_a_signal_removes_its_staging_folder(tmp_path, signum):
    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    child = _slow_prepare(_dream_input(tmp_path / "b.txt", 5, 2.0), out)
    try:
        assert _staging(out), "the run stages its dataset in a .ds.prepare-* folder"
        child.send_signal(signum)
        child.wait(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode != 0
    assert _staging(out) == []
    assert read_meta(out)["rows_kept"] == 3  # the old dataset is untouched


def test_two_prepares_into_one_out_the_second_is_refused_at_once_naming_the_lock(tmp_path, capsys):
    from proformer.cli import main

    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    second = _dream_input(tmp_path / "c.txt", 7, 3.0)
    child = _slow_prepare(_dream_input(tmp_path / "b.txt", 5, 2.0), out)
    try:
        staged = _staging(out)
        assert len(staged) == 1
        lock = tmp_path / "ds.lock"
        started = time.perf_counter()
        with pytest.raises(OutputLocked, match=rf"^{out} is being prepared by another run, which holds the lock "
                                               rf"{lock}; wait for it to finish, or prepare into another --out$"):
            prepare(second, out, progress=False)
        assert time.perf_counter() - started < 5  # refused at once, not after waiting
        assert main(["prepare", str(second), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{lock}" in err[0] and f"{out} is being prepared" in err[0], err
        # The second run wrote nothing: one staging folder (the first run's), the dataset untouched.
        assert _staging(out) == staged and staged[0].is_dir()
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert child.poll() is None  # the first run goes on
    finally:
        child.terminate()
        child.wait(timeout=60)
    # Its holder gone, the lock is free: the next run prepares.
    assert prepare(second, out, progress=False)["rows_kept"] == 7
    assert _staging(out) == []


def test_a_staging_folder_of_a_killed_prepare_is_removed_by_the_next_one(tmp_path):
    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    child = _slow_prepare(_dream_input(tmp_path / "b.txt", 5, 2.0), out)
    staged = _staging(out)
    child.kill()  # SIGKILL: no handler runs, the staging folder stays; the system frees the lock
    child.wait(timeout=60)
    assert len(staged) == 1 and staged[0].is_dir() and (tmp_path / "ds.lock").exists()
    assert read_meta(out)["rows_kept"] == 3
    assert prepare(_dream_input(tmp_path / "c.txt", 4, 3.0), out, progress=False)["rows_kept"] == 4
    assert not staged[0].exists() and _staging(out) == []


def test_an_output_whose_folder_is_not_writable_holds_its_lock_and_staging_inside(tmp_path, monkeypatch):
    """Root writes anywhere, so the unwritable parent is simulated: creating files beside the
    output is refused; prepare then locks and stages inside the (writable) output."""
    import tempfile

    import filelock

    import proformer.data.staging as staging

    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    (tmp_path / "ds.lock").unlink()
    real_lock, real_mkdtemp = filelock.FileLock, tempfile.mkdtemp

    def lock(path, *args, **kwargs):
        if Path(path).parent == tmp_path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_lock(path, *args, **kwargs)

    def mkdtemp(*args, dir=None, **kwargs):
        if Path(dir) == tmp_path:
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkdtemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(staging, "FileLock", lock)
    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    assert prepare(_dream_input(tmp_path / "b.txt", 4, 2.0), out, progress=False)["rows_kept"] == 4
    assert not (tmp_path / "ds.lock").exists() and (out / ".prepare.lock").exists()
    assert _staging(out) == []
    held = real_lock(out / ".prepare.lock", timeout=0)
    held.acquire()
    try:
        with pytest.raises(OutputLocked, match=rf"holds the lock {out / '.prepare.lock'}"):
            prepare(_dream_input(tmp_path / "c.txt", 5, 3.0), out, progress=False)
    finally:
        held.release()


def test_prepare_replaces_the_dataset_as_a_whole(tmp_path, monkeypatch):
    """After every file-system step of publishing, a reader finds the old dataset or the new
    one, complete, or none for the moment between the two renames; never a mix."""
    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    (out / "notes.txt").write_text("the user's own file")
    seen = []

    def look() -> None:
        if not out.exists():
            seen.append("absent")
            return
        try:
            seen.append(validate(out)["rows_kept"])
        except Exception as error:  # noqa: BLE001 - any failure is a torn dataset
            seen.append(f"torn: {error}")

    for name in ("replace", "rename"):
        real = getattr(os, name)

        def step(*args, real=real, **kwargs):
            real(*args, **kwargs)
            look()

        monkeypatch.setattr(os, name, step)
    real_unlink = Path.unlink

    def unlink(self, *args, **kwargs):
        real_unlink(self, *args, **kwargs)
        look()

    monkeypatch.setattr(Path, "unlink", unlink)
    prepare(_dream_input(tmp_path / "b.txt", 5, 2.0), out, progress=False)
    monkeypatch.undo()
    look()
    assert set(seen) <= {3, 5, "absent"}, seen
    assert "absent" in seen  # the two renames were observed
    assert seen[-1] == 5 and (out / "notes.txt").read_text() == "the user's own file"
    assert not aside(out).exists()


def test_an_interrupted_swap_leaves_the_old_dataset_whole(tmp_path, monkeypatch):
    """The second rename (new dataset in) fails: the old dataset goes back, whole, and the
    next prepare publishes."""
    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    (out / "notes.txt").write_text("the user's own file")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = os.rename

    def rename(src, dst, *args, **kwargs):
        if Path(src).name.startswith(".ds.prepare-"):
            raise OSError(5, "Input/output error", str(src))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="Input/output error"):
        prepare(_dream_input(tmp_path / "b.txt", 5, 2.0), out, progress=False)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert validate(out)["rows_kept"] == 3
    assert not aside(out).exists() and _staging(out) == []
    assert prepare(_dream_input(tmp_path / "c.txt", 4, 3.0), out, progress=False)["rows_kept"] == 4
    assert (out / "notes.txt").read_text() == "the user's own file"


# The process dies between the two renames of the swap: the old dataset is aside, the new one staged.
_KILLED_IN_SWAP = """
import os, sys
from pathlib import Path
import proformer.data.prepare as p
real = os.rename
def rename(src, dst, *args, **kwargs):
    if Path(src).name.startswith(".ds.prepare-"):
        os._exit(9)
    return real(src, dst, *args, **kwargs)
os.rename = rename
p.prepare(sys.argv[1], sys.argv[2], progress=False)
"""


def test_a_prepare_killed_between_the_two_renames_is_recovered_by_the_next_one(tmp_path, capsys):
    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 3, 1.0), out, progress=False)
    (out / "notes.txt").write_text("the user's own file")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    child = subprocess.run([sys.executable, "-c", _KILLED_IN_SWAP, str(_dream_input(tmp_path / "b.txt", 5, 2.0)),
                            str(out)], capture_output=True, text=True, timeout=120)
    assert child.returncode == 9, child.stderr
    # No dataset at the target for now, but the old one is whole under the name prepare knows.
    assert not out.exists() and len(_staging(out)) == 1
    assert {p.name: p.read_bytes() for p in aside(out).iterdir()} == before
    # The next run puts it back first, so a failing run still leaves the old dataset...
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{GOOD}\t1.0\nACGT!\t2.0\n")
    with pytest.raises(InputError, match="bad.txt:2"):
        prepare(bad, out, progress=False)
    assert "put back the dataset an interrupted run had moved aside" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not aside(out).exists() and _staging(out) == []
    # ... and a good one replaces it, keeping the user's file.
    assert prepare(_dream_input(tmp_path / "c.txt", 4, 3.0), out, progress=False)["rows_kept"] == 4
    assert (out / "notes.txt").read_text() == "the user's own file" and not aside(out).exists()


# --------------------------------------------------------------------------------------------
# 4. sweep: cell ids are plain directory names; 6. duplicate YAML keys, no cells
# --------------------------------------------------------------------------------------------

from proformer.experiments.grids import Cell, Grid, load_grid, product_grid
from proformer.experiments.sweep import run_sweep


@pytest.mark.parametrize("cell_id", ["..", ".", "a/b", "/tmp/evil", "../up", ".hidden", "-rf", "a\\b", "x" * 101])
def test_sweep_refuses_path_like_cell_ids(tmp_path, cell_id):
    path = tmp_path / "grid.yaml"
    path.write_text(f"preset: grid\ncells:\n  - {{id: a, set: [readout=pool]}}\n  - {{id: {json.dumps(cell_id)}, set: [readout=8]}}\n")
    with pytest.raises(ValueError, match=r"grid\.yaml:4: cells\[1\]: cell id .* is not a plain directory name"):
        load_grid(path)
    with pytest.raises(ValueError, match="is not a plain directory name"):
        run_sweep(str(path), None, tmp_path / "out", dry_run=True)
    with pytest.raises(ValueError, match="is not a plain directory name"):  # grids built in Python too
        Grid(name="g", preset="grid", cells=(Cell(id=cell_id, overrides=("readout=8",)),))
    assert not (tmp_path / "out").exists()


def test_sweep_accepts_plain_ids_and_builtin_slugs(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("preset: grid\ncells:\n  - {id: lr1e-3_a.b=c, set: [readout=pool]}\n  - {set: [data.split=hash:0.8]}\n")
    assert [c.id for c in load_grid(path).cells] == ["lr1e-3_a.b=c", "splithash0.8"]
    assert product_grid("g", "grid", [("dim=64",)], [("readout=pool",)]).cells[0].id == "dim64-readoutpool"


def test_sweep_with_no_cells_is_a_clear_error(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("preset: grid\ncells: []\n")
    with pytest.raises(ValueError, match=r"grid\.yaml:2: 'cells' must be a non-empty list"):
        run_sweep(str(path), None, tmp_path / "out", dry_run=True)
    with pytest.raises(ValueError, match="has no cells"):
        Grid(name="g", preset="grid", cells=())


@pytest.mark.parametrize(
    "text, line, key, first",
    [
        ("preset: grid\ncells:\n  - {id: a, set: [readout=pool]}\npreset: atac\n", 4, "preset", 1),
        ("preset: grid\nrows:\n  - {dim: 64, dim: 128}\ncolumns:\n  - [readout=8]\n", 3, "dim", 3),
        ("preset: grid\ncells:\n  - id: a\n    set: [readout=pool]\n    id: b\n", 5, "id", 3),
    ],
)
def test_duplicate_yaml_keys_in_a_sweep_grid_are_an_error_naming_the_key(tmp_path, text, line, key, first):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"grid\.yaml:{line}: duplicate key '{key}' \(first given on line {first}\)"):
        load_grid(path)


def test_unique_key_loader_keeps_yaml_merge_keys():
    import yaml

    from proformer.experiments.grids import UniqueKeyLoader

    text = "base: &b {dim: 64, heads: 2}\nmodel:\n  <<: *b\n  dim: 128\n"
    assert yaml.load(text, Loader=UniqueKeyLoader)["model"] == {"dim": 128, "heads": 2}


# --------------------------------------------------------------------------------------------
# 5. download: bounded reads, a warning without a checksum, names that collide or are too long
# --------------------------------------------------------------------------------------------

import re

from test_download import RECORD as RECORD_ID
from test_download import FakeZenodo, site  # noqa: F401 - the local Zenodo look-alike

from proformer import download
from proformer.download import DownloadError, download_dream2022


def _strip(fake: FakeZenodo, key: str, *fields: str) -> None:
    """Serve the record with ``fields`` left out of ``key``'s entry."""
    original = fake.record

    def record() -> dict:
        data = original()
        for entry in data["files"]:
            if entry["key"] == key:
                for name in fields:
                    entry.pop(name, None)
        return data

    fake.record = record


def _fetch(fake: FakeZenodo, out: Path, **kwargs):
    return download_dream2022(out, api_url=fake.api_url, timeout=5, progress=False, **kwargs)


def test_download_without_a_size_is_bounded(site, tmp_path, monkeypatch):  # noqa: F811 - the imported fixture
    key = "train_sequences.txt"  # 5,000 bytes
    _strip(site, key, "size")
    monkeypatch.setattr(download, "MAX_UNSIZED_BYTES", 1000, raising=False)
    with pytest.raises(DownloadError, match=rf"{key}.*gives no size and the server sent more than"):
        _fetch(site, tmp_path, files=[key])
    assert not (tmp_path / key).exists() and not (tmp_path / f"{key}.part").exists()
    monkeypatch.setattr(download, "MAX_UNSIZED_BYTES", 10_000, raising=False)
    assert _fetch(site, tmp_path, files=[key])[0].read_bytes() == site.files[key]


def test_download_of_a_sized_file_stops_at_its_size(site, tmp_path):  # noqa: F811 - the imported fixture
    key = "test_sequences.txt"
    site.body_override[key] = site.files[key] * 50  # a server that sends far more than listed
    _strip(site, key, "checksum")
    with pytest.warns(UserWarning, match="no checksum"), pytest.raises(DownloadError, match=rf"size mismatch for {key}"):
        _fetch(site, tmp_path, files=[key])
    assert not (tmp_path / f"{key}.part").exists()


def test_download_warns_when_a_file_has_no_checksum(site, tmp_path):  # noqa: F811 - the imported fixture
    key = "sample_submission.json"
    _strip(site, key, "checksum")
    with pytest.warns(UserWarning, match=rf"{key}: the Zenodo record gives no checksum"):
        paths = _fetch(site, tmp_path)
    assert [p.read_bytes() for p in paths] == list(site.files.values())


@pytest.mark.parametrize("key", ["zenodo_record.json", "zenodo_record.json.tmp", "test_sequences.txt.part"])
def test_download_refuses_a_file_named_like_its_own_files(site, tmp_path, key):  # noqa: F811 - the imported fixture
    site.files[key] = b"not the record"
    with pytest.raises(DownloadError, match=rf"file '{re.escape(key)}' of Zenodo record \d+ has the name of"):
        _fetch(site, tmp_path)
    assert not (tmp_path / "zenodo_record.json").exists()  # refused before anything is written
    others = [name for name in site.files if name != key]
    _fetch(site, tmp_path, files=others)  # leaving it out works
    assert json.loads((tmp_path / "zenodo_record.json").read_text())["id"] == int(RECORD_ID)


def test_download_refuses_a_too_long_file_name_clearly(site, tmp_path):  # noqa: F811 - the imported fixture
    key = "x" * 300 + ".txt"
    site.files[key] = b"long"
    with pytest.raises(DownloadError, match=r"is 304 bytes long; with '.part' it exceeds the \d+ bytes"):
        _fetch(site, tmp_path)
    with pytest.raises(DownloadError, match=r"exceeds"):
        _fetch(site, tmp_path, files=[key])


def test_download_refuses_a_record_listing_a_file_twice():
    entry = {"key": "a.txt", "size": 1, "links": {"self": "http://x/a"}}
    with pytest.raises(DownloadError, match="lists the file 'a.txt' twice"):
        download.record_files({"files": [entry, dict(entry)]})


# --------------------------------------------------------------------------------------------
# Unclear errors in the same files: a corrupt leaderboard file, a truncated codes.npy
# --------------------------------------------------------------------------------------------


def test_corrupt_leaderboard_file_is_named(tmp_path):
    import shutil

    from proformer.score import subset_definitions

    mini = tmp_path / "mini"
    shutil.copytree(MINI, mini)
    (mini / "public_leaderboard" / "high_exp_indices.json").write_text('{"0": 1.0,\n')
    with pytest.raises(ValueError, match=r"high_exp_indices\.json: line 2: not valid JSON"):
        subset_definitions(mini, "public")


def test_truncated_codes_npy_is_named(tmp_path):
    from proformer.io.dataset import DatasetFormatError, read_dataset

    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 50, 1.0), out, progress=False)
    data = (out / "codes.npy").read_bytes()
    (out / "codes.npy").write_bytes(data[: len(data) // 2])
    for read in (read_dataset, validate):
        with pytest.raises(DatasetFormatError, match=r"codes\.npy: not a readable \.npy array .*truncated"):
            read(out)


def test_prepare_refuses_a_trim_that_empties_every_sequence(tmp_path):
    """--trim 100,100 on 110-nt rows used to write a dataset of empty sequences with exit 0."""
    from proformer.data.prepare import prepare

    source = tmp_path / "rows.tsv"
    source.write_text("".join(f"{'ACGT' * 27}AC\t{i}.5\n" for i in range(20)))
    with pytest.raises(ValueError, match=r"--trim 100,100 removes 200 positions, and the longest sequence has 110"):
        prepare(source, tmp_path / "data", trim=(100, 100), progress=False)
    assert not (tmp_path / "data" / "meta.json").exists()
    assert not [p for p in tmp_path.iterdir() if ".prepare-" in p.name]  # staging removed
