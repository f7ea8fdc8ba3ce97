"""Tests of :mod:`proformer.io.dataset`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    DREAM_ROWS,
    GOOD,
    _dream_input,
    _staging,
    dream_text_prepare,
    load,
    run_prepare,
    write_prepare,
)

from proformer.data.dataset import Dataset
from proformer.data.prepare import REASONS, InputError, load_meta, prepare
from proformer.experiments.subsets import write_subset
from proformer.io import dataset as fmt
from proformer.io.dataset import (
    DatasetFormatError,
    aside,
    publish,
    read_dataset,
    read_meta,
    validate,
    write_meta,
)
from proformer.sequence import N, decode

ROWS = ["ACGTACGTAC", "GGGTTTAAACCC", "ACGTN", "TTTTTTTT"]


def _meta(n: int, n_targets: int = 1) -> dict:
    """A complete meta.json body (every key of META_KEYS but the version) for ``n`` rows."""
    return {
        "source": {"path": "/nowhere", "sha256": "0" * 64, "format": "dream"},
        "rows_read": n, "rows_kept": n, "dropped": {},
        "target_names": [f"t{i}" for i in range(n_targets)],
        "target_mean": [0.0] * n_targets, "target_std": [1.0] * n_targets,
        "min_length": 4, "max_length": 6, "transforms": {"head": 0, "tail": 0, "length": 6},
        "proformer_version": "test", "created": "2024-01-01T00:00:00+00:00",
    }


def _write_arrays(directory: Path, n: int = 3, width: int = 6) -> dict[str, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        fmt.CODES: np.arange(n * width, dtype=np.uint8).reshape(n, width) % 5,
        fmt.LENGTHS: np.array([4, 6, 5][:n], dtype=np.int32),
        fmt.TARGETS: np.array([[1.0], [2.5], [3.0]][:n], dtype=np.float32),
        fmt.INTEGER_TARGET: np.array([True, False, True][:n]),
    }
    for name, array in arrays.items():
        np.save(directory / name, array)
    return arrays


def _dataset(directory: Path) -> Path:
    _write_arrays(directory)
    write_meta(directory, _meta(3))
    return directory


def _dataset_hardening_config(directory, n=4, width=6):
    directory.mkdir(parents=True)
    np.save(directory / fmt.CODES, (np.arange(n * width, dtype=np.uint8).reshape(n, width) % 5))
    np.save(directory / fmt.LENGTHS, np.full(n, width, dtype=np.int32))
    np.save(directory / fmt.TARGETS, np.arange(n, dtype=np.float32)[:, None])
    fmt.write_meta(directory, {
        "source": {}, "rows_read": n, "rows_kept": n, "dropped": {}, "target_names": ["t"], "target_mean": [0.0],
        "target_std": [1.0], "min_length": width, "max_length": width,
        "transforms": {"head": 0, "tail": 0, "length": width}, "proformer_version": "test", "created": "now"})
    return directory


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


def test_write_read_round_trip(tmp_path):
    arrays = _write_arrays(tmp_path / "ds")
    # A copied meta (a subset's) carrying another version is written with the current one.
    written = write_meta(tmp_path / "ds", {"format_version": 0, **_meta(3), "extra": {"kept": True}})
    text = (tmp_path / "ds" / fmt.META).read_text()
    assert list(json.loads(text))[0] == "format_version" and text.endswith("}\n")
    assert written["format_version"] == fmt.FORMAT_VERSION == 1 and written["extra"] == {"kept": True}
    assert read_meta(tmp_path / "ds") == written == load_meta(tmp_path / "ds") == validate(tmp_path / "ds")
    meta, codes, lengths, targets = read_dataset(tmp_path / "ds")
    assert meta == written
    assert isinstance(codes, np.memmap) and np.array_equal(codes, arrays[fmt.CODES])
    assert np.array_equal(lengths, arrays[fmt.LENGTHS]) and np.array_equal(targets, arrays[fmt.TARGETS])


def test_integer_target_flags_whole_numbers_in_the_first_column():
    assert fmt.is_integer_target(np.array([[3.0, 0.5], [2.5, 1.0], [-1.0, 0.0]])).tolist() == [True, False, True]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps({"format_version": 99}), "format_version 99, this proformer reads 1"),
        (json.dumps({"format_version": "1"}), "format_version '1'"),
        (json.dumps({"rows_kept": 3}), "no format_version"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON list, not an object"),
    ],
)
def test_read_meta_rejects_other_versions_naming_the_file(tmp_path, content, message):
    (tmp_path / fmt.META).write_text(content)
    with pytest.raises(DatasetFormatError, match=message) as error:
        read_meta(tmp_path)
    assert str(tmp_path / fmt.META) in str(error.value) and "prepare the dataset again" in str(error.value)
    assert isinstance(error.value, ValueError)  # callers catching ValueError keep working


def test_read_meta_without_meta_says_how_to_prepare(tmp_path):
    with pytest.raises(FileNotFoundError, match="no meta.json, so it is not a prepared dataset") as error:
        read_meta(tmp_path)
    assert f"proformer prepare INPUT --out {tmp_path}" in str(error.value)


def test_dataset_checks_the_format_version(tmp_path):
    directory = _dataset(tmp_path / "ds")
    assert len(Dataset(directory)) == 3
    meta = json.loads((directory / fmt.META).read_text())
    (directory / fmt.META).write_text(json.dumps({**meta, "format_version": 2}))
    with pytest.raises(DatasetFormatError, match="format_version 2") as error:
        Dataset(directory)
    assert str(directory / fmt.META) in str(error.value)


def test_dataset_missing_files_are_named(tmp_path):
    directory = _dataset(tmp_path / "ds")
    (directory / fmt.TARGETS).unlink()
    with pytest.raises(FileNotFoundError, match=r"not a prepared dataset \(missing targets.npy\)"):
        Dataset(directory)


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda d: np.save(d / fmt.LENGTHS, np.array([4, 6], dtype=np.int32)), "lengths.npy 2"),
        (lambda d: np.save(d / fmt.TARGETS, np.zeros((4, 1), dtype=np.float32)), "targets.npy 4"),
        (lambda d: np.save(d / fmt.INTEGER_TARGET, np.zeros(5, dtype=bool)), "integer_target.npy 5"),
        (lambda d: write_meta(d, {**_meta(3), "rows_kept": 7}), "meta.json rows_kept 7"),
    ],
)
def test_dataset_rejects_files_that_disagree_on_rows(tmp_path, damage, named):
    directory = _dataset(tmp_path / "ds")
    damage(directory)
    with pytest.raises(DatasetFormatError, match="disagree on the number of rows") as error:
        Dataset(directory)
    assert named in str(error.value) and "codes.npy 3" in str(error.value)


def test_validate_checks_what_reading_does_not(tmp_path):
    directory = _dataset(tmp_path / "ds")
    assert validate(directory)["rows_kept"] == 3
    (directory / fmt.WINDOWS).write_text("chrom\tstart\tend\tsummit\ttarget\nchr1\t0\t6\t3\t1\nchr1\t5\t11\t8\t2\n")
    with pytest.raises(DatasetFormatError, match=r"codes.npy 3, windows.tsv \(without its header\) 2"):
        validate(directory)
    (directory / fmt.WINDOWS).unlink()
    write_meta(directory, {**_meta(3), "target_names": ["a", "b"]})
    with pytest.raises(DatasetFormatError, match="names 2 target"):
        validate(directory)
    meta = _meta(3)
    del meta["transforms"]
    write_meta(directory, meta)
    with pytest.raises(DatasetFormatError, match="missing key"):
        validate(directory)
    write_meta(directory, _meta(3))
    np.save(directory / fmt.LENGTHS, np.array([4, 9, 5], dtype=np.int32))
    with pytest.raises(DatasetFormatError, match="lengths.npy: lengths 4..9 do not fit the 6 columns"):
        validate(directory)
    np.save(directory / fmt.LENGTHS, np.array([4, 6, 5], dtype=np.int32))
    np.save(directory / fmt.CODES, np.zeros((3, 6), dtype=np.int64))
    with pytest.raises(DatasetFormatError, match="codes.npy: dtype int64"):
        validate(directory)


def test_publish_into_an_existing_directory_replaces_only_dataset_files(tmp_path):
    out = _dataset(tmp_path / "out")
    (out / fmt.WINDOWS).write_text("chrom\tstart\tend\tsummit\ttarget\n" + "chr1\t0\t6\t3\t1\n" * 3)
    (out / "notes.txt").write_text("the user's own file")
    staged = tmp_path / "staged"
    _write_arrays(staged, n=2)
    write_meta(staged, {**_meta(2), "min_length": 4})
    publish(staged, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*fmt.REQUIRED_FILES, fmt.INTEGER_TARGET, "notes.txt"])
    assert len(Dataset(out)) == 2 and validate(out)["rows_kept"] == 2


def test_publish_refuses_an_incomplete_dataset_and_leaves_the_old_one(tmp_path):
    out = _dataset(tmp_path / "out")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    staged = tmp_path / "staged"
    _write_arrays(staged, n=2)
    write_meta(staged, _meta(3))  # says 3 rows, holds 2
    with pytest.raises(DatasetFormatError, match="meta.json rows_kept 3"):
        publish(staged, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    fresh = tmp_path / "fresh"
    with pytest.raises(DatasetFormatError):
        publish(staged, fresh)
    assert not fresh.exists()


def test_publish_swaps_with_two_renames_and_puts_the_old_dataset_back_when_the_second_fails(tmp_path, monkeypatch):
    out = _dataset(tmp_path / "out")
    (out / "notes.txt").write_text("the user's own file")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    staged = tmp_path / "staged"
    _write_arrays(staged, n=2)
    write_meta(staged, _meta(2))
    real, calls = os.rename, []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(src))
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="No space left"):
        publish(staged, out)
    monkeypatch.undo()
    assert calls == [("out", ".out.old"), ("staged", "out"), (".out.old", "out")]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and not fmt.aside(out).exists()
    assert validate(staged)["rows_kept"] == 2  # the new dataset is still staged, whole
    publish(staged, out)
    assert validate(out)["rows_kept"] == 2 and (out / "notes.txt").exists() and not fmt.aside(out).exists()


@pytest.mark.parametrize("killed", ["between the renames", "after the renames"])
def test_publish_recovers_what_a_killed_publish_left(tmp_path, killed):
    out = _dataset(tmp_path / "out")
    (out / "notes.txt").write_text("the user's own file")
    old = fmt.aside(out)
    assert old == tmp_path / ".out.old"
    os.rename(out, old)
    if killed == "after the renames":  # the new dataset is in, the old one's own files not yet moved
        _write_arrays(out, n=2)
        write_meta(out, _meta(2))
        assert fmt.recover(out) == "removed"
        assert validate(out)["rows_kept"] == 2 and (out / "notes.txt").exists() and not old.exists()
        return
    out.mkdir()  # an empty directory made since (prepare makes its output) is no dataset
    assert fmt.recover(out) == "restored"
    assert validate(out)["rows_kept"] == 3 and (out / "notes.txt").exists() and not old.exists()
    assert fmt.recover(out) is None
    # publish recovers first by itself (the sweep's subsets publish without prepare).
    os.rename(out, old)
    staged = tmp_path / "staged"
    _write_arrays(staged, n=2)
    write_meta(staged, _meta(2))
    publish(staged, out)
    assert validate(out)["rows_kept"] == 2 and (out / "notes.txt").exists() and not old.exists()


def test_prepare_writes_a_valid_dataset_replacing_stale_files(tmp_path):
    source = tmp_path / "x.tsv"
    source.write_text("".join(f"{seq}\t{i + 0.5}\n" for i, seq in enumerate(ROWS)))
    out = _dataset(tmp_path / "ds")
    (out / fmt.WINDOWS).write_text("chrom\tstart\tend\tsummit\ttarget\n" + "chr1\t0\t6\t3\t1\n" * 3)
    meta = prepare(source, out, trim=(0, 0), progress=False, chunk_rows=2)
    assert validate(out) == meta == read_meta(out)
    assert not (out / fmt.WINDOWS).exists()  # it described the old rows
    assert sorted(p.name for p in out.iterdir()) == sorted([*fmt.REQUIRED_FILES, fmt.INTEGER_TARGET])
    dataset = Dataset(out)
    # Chunks of different widths padded with N (4) into one open_memmap'd codes.npy.
    assert dataset.codes.shape == (4, 12) and dataset.lengths.tolist() == [10, 12, 5, 8]
    assert np.all(dataset.codes[2, 5:] == 4) and np.all(dataset.codes[0, 10:] == 4) and dataset.codes[0, 9] == 1
    with open(out / fmt.CODES, "rb") as handle:  # the header np.save would write
        assert np.lib.format.read_magic(handle) == (1, 0)


def test_subsets_write_valid_datasets(tmp_path):
    source = tmp_path / "x.tsv"
    source.write_text("".join(f"{seq}\t{i}\n" for i, seq in enumerate(ROWS)))
    prepare(source, tmp_path / "ds", trim=(0, 0), progress=False)
    parent = Dataset(tmp_path / "ds")
    out = write_subset(parent, np.array([3, 1]), tmp_path / "sub", {"fraction": 0.5})
    meta = validate(out)
    assert meta["rows_kept"] == 2 and meta["subset_of"]["rows"] == 4 and meta["format_version"] == 1
    assert Dataset(out).lengths.tolist() == [12, 8]
    assert np.load(out / fmt.INTEGER_TARGET).tolist() == [True, True]
    assert not (tmp_path / "sub.partial").exists()


def test_atac_writes_valid_datasets(tmp_path):
    pytest.importorskip("pyBigWig")
    pytest.importorskip("pyfaidx")
    from proformer.data.atac import prepare_atac
    from proformer.data.genome_sim import simulate_atac

    paths = simulate_atac(tmp_path / "sim", chromosomes=1, chrom_length=20_000, n_peaks=10)
    out = tmp_path / "out"
    summary = prepare_atac(paths["fasta"], out, signal=paths["signal"], peaks=paths["peaks"], n=50, progress=False)
    assert summary == read_meta(out) and summary["format_version"] == 1
    for part, rows in summary["parts"].items():
        meta = validate(out / part)
        assert meta["rows_kept"] == rows and (out / part / fmt.WINDOWS).exists()
        assert sorted(p.name for p in (out / part).iterdir()) == sorted(fmt.FILES)


def test_a_code_out_of_range_is_refused_naming_the_file(tmp_path):
    from proformer.data.dataset import Dataset

    directory = _dataset_hardening_config(tmp_path / "data")
    fmt.validate(directory)  # the intact dataset is fine
    codes = np.load(directory / fmt.CODES)
    codes[2, 3] = 9  # written by hand
    np.save(directory / fmt.CODES, codes)
    for opener in (fmt.read_dataset, fmt.validate, Dataset):
        with pytest.raises(fmt.DatasetFormatError, match=r"codes\.npy: row 2, column 3: code 9 is not a symbol code"):
            opener(directory)
    codes[2, 3] = 5  # M, the mask token, is no data symbol either
    np.save(directory / fmt.CODES, codes)
    with pytest.raises(fmt.DatasetFormatError, match="code 5"):
        fmt.read_dataset(directory)


def test_the_code_check_scans_in_chunks(tmp_path, monkeypatch):
    directory = _dataset_hardening_config(tmp_path / "data", n=50, width=7)
    codes = np.load(directory / fmt.CODES)
    codes[-1, -1] = 200  # in the last chunk
    np.save(directory / fmt.CODES, codes)
    monkeypatch.setattr(fmt, "_CODES_CHUNK", 16)
    with pytest.raises(fmt.DatasetFormatError, match="row 49, column 6: code 200"):
        fmt.read_dataset(directory)


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


def test_truncated_codes_npy_is_named(tmp_path):
    from proformer.io.dataset import DatasetFormatError, read_dataset

    out = tmp_path / "ds"
    prepare(_dream_input(tmp_path / "a.txt", 50, 1.0), out, progress=False)
    data = (out / "codes.npy").read_bytes()
    (out / "codes.npy").write_bytes(data[: len(data) // 2])
    for read in (read_dataset, validate):
        with pytest.raises(DatasetFormatError, match=r"codes\.npy: not a readable \.npy array .*truncated"):
            read(out)


def test_dream_round_trip(tmp_path):
    path = write_prepare(tmp_path / "train.txt", dream_text_prepare())
    meta = run_prepare(path, tmp_path / "ds")
    arrays = load(tmp_path / "ds")
    kept = [row for row in DREAM_ROWS if len(row[0]) - 30 <= 100]
    assert len(kept) == len(DREAM_ROWS) - 1

    codes, lengths = arrays["codes"], arrays["lengths"]
    assert codes.dtype == np.uint8 and lengths.dtype == np.int32
    assert codes.shape == (len(kept), 130)  # padded to the widest kept row, not the dropped one
    assert decode(codes, lengths) == [sequence.upper() for sequence, _ in kept]
    assert lengths.tolist() == [len(sequence) for sequence, _ in kept]
    assert (codes[np.arange(130) >= lengths[:, None]] == N).all()  # padding is N
    assert "M" not in "".join(decode(codes))

    expected = np.array([float(target) for _, target in kept], dtype=np.float32)[:, None]
    assert arrays["targets"].dtype == np.float32 and np.array_equal(arrays["targets"], expected)
    assert arrays["integer_target"].dtype == np.bool_
    assert arrays["integer_target"].tolist() == [True, False, True, False, False, True]

    assert meta == json.loads((tmp_path / "ds" / "meta.json").read_text()) == load_meta(tmp_path / "ds")
    assert meta["format_version"] == 1
    assert meta["source"] == {
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "format": "dream",
    }
    assert meta["rows_read"] == 7 and meta["rows_kept"] == 6
    assert meta["dropped"] == dict.fromkeys(REASONS, 0) | {"too_long": 1}
    assert meta["target_names"] == ["expression"]
    values = expected[:, 0].astype(np.float64)
    assert meta["target_mean"] == pytest.approx([values.mean()], rel=1e-12)
    assert meta["target_std"] == pytest.approx([values.std()], rel=1e-12)
    assert meta["min_length"] == min(map(len, (s for s, _ in kept))) and meta["max_length"] == 130
    assert meta["transforms"] == {"head": 17, "tail": 13, "length": 100}
    assert meta["proformer_version"] and meta["created"]


def test_load_meta_rejects_non_datasets(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        load_meta(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ValueError, match="format_version 99"):
        load_meta(tmp_path)
