"""The prepared-dataset directory (``docs/dataset-format.md``): file names, version, reading, writing.

Every writer of a dataset directory (``proformer prepare``, ``prepare-atac``, the sweep's
subsets) stages its files in a directory of its own, writes ``meta.json`` with
:func:`write_meta` and moves the result into place with :func:`publish`, which validates it
first; every reader goes through :func:`read_meta` or :func:`read_dataset`, which check the
format version. numpy and the standard library only: preparing data must not need torch.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "FORMAT_VERSION", "CODES", "LENGTHS", "TARGETS", "META", "INTEGER_TARGET", "WINDOWS", "REQUIRED_FILES",
    "OPTIONAL_FILES", "FILES", "META_KEYS", "DatasetFormatError", "DatasetArrays", "write_meta", "read_meta",
    "read_dataset", "validate", "publish", "aside", "recover", "is_integer_target",
]

#: The version written to, and the only one accepted from, ``meta.json["format_version"]``.
FORMAT_VERSION = 1

CODES = "codes.npy"  # uint8 (n, width)
LENGTHS = "lengths.npy"  # int32 (n,)
TARGETS = "targets.npy"  # float32 (n, n_targets)
META = "meta.json"
INTEGER_TARGET = "integer_target.npy"  # bool (n,)
WINDOWS = "windows.tsv"  # prepare-atac: header + one line of genomic coordinates per row

REQUIRED_FILES = (CODES, LENGTHS, TARGETS, META)
OPTIONAL_FILES = (INTEGER_TARGET, WINDOWS)
#: Every file a dataset directory may hold; a writer replaces exactly these.
FILES = REQUIRED_FILES + OPTIONAL_FILES

#: The keys of ``meta.json`` every dataset carries (``docs/dataset-format.md``); writers may add more.
META_KEYS = (
    "format_version", "source", "rows_read", "rows_kept", "dropped", "target_names", "target_mean", "target_std",
    "min_length", "max_length", "transforms", "proformer_version", "created",
)


class DatasetFormatError(ValueError):
    """A dataset directory is not in the format this proformer reads; the message names the file."""


class DatasetArrays(NamedTuple):
    """A dataset directory opened by :func:`read_dataset`.

    Attributes
    ----------
    meta : dict
        ``meta.json``, its version checked.
    codes : np.ndarray
        uint8 memmap ``(n, width)``.
    lengths : np.ndarray
        ``(n,)``, in memory.
    targets : np.ndarray
        float32 memmap ``(n, n_targets)`` (a 1-D file is read as one column).
    """

    meta: dict
    codes: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray


def _prepare_hint(directory: Path) -> str:
    return f"proformer prepare INPUT --out {directory}"


def write_meta(directory: str | os.PathLike, meta: dict) -> dict:
    """Write ``directory/meta.json``: the one writer of the file.

    Parameters
    ----------
    directory : str or path
        Where to write (normally a staging directory that :func:`publish` then moves).
    meta : dict
        JSON-serialisable contents; any ``format_version`` in it is replaced by
        :data:`FORMAT_VERSION`, so a copied ``meta`` (a subset's) never carries an old one.

    Returns
    -------
    dict
        What was written: ``format_version`` first, then ``meta``'s keys in order.
    """
    written = {"format_version": FORMAT_VERSION, **{k: v for k, v in meta.items() if k != "format_version"}}
    (Path(directory) / META).write_text(json.dumps(written, indent=2) + "\n")
    return written


def read_meta(directory: str | os.PathLike) -> dict:
    """Read ``directory/meta.json`` and check its format version.

    Raises
    ------
    FileNotFoundError
        The directory holds no ``meta.json`` (it was never prepared).
    DatasetFormatError
        ``meta.json`` is not a JSON object, or its ``format_version`` is not :data:`FORMAT_VERSION`.
    """
    directory = Path(directory)
    path = directory / META
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} has no {META}, so it is not a prepared dataset; create one with {_prepare_hint(directory)}"
        )
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetFormatError(f"{path}: not valid JSON ({error}); prepare the dataset again ({_prepare_hint(directory)})") from None
    if not isinstance(meta, dict):
        raise DatasetFormatError(
            f"{path}: holds a JSON {type(meta).__name__}, not an object; prepare the dataset again ({_prepare_hint(directory)})"
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        found = "no format_version" if "format_version" not in meta else f"dataset format_version {version!r}"
        raise DatasetFormatError(
            f"{path}: {found}, this proformer reads {FORMAT_VERSION}; prepare the dataset again ({_prepare_hint(directory)})"
        )
    return meta


def _check_rows(directory: Path, rows: dict[str, int], what: str) -> None:
    """Raise naming every file when the row counts in ``rows`` (file name -> rows) differ."""
    if len(set(rows.values())) > 1:
        counts = ", ".join(f"{name} {count:,}" for name, count in rows.items())
        raise DatasetFormatError(
            f"{directory}: the files disagree on the number of rows ({counts}); {what} one row per sequence. "
            f"Prepare the dataset again ({_prepare_hint(directory)})"
        )


def _load_array(directory: Path, name: str, mmap_mode: str | None = None) -> np.ndarray:
    """``np.load`` of one dataset file; a truncated or corrupt file names itself."""
    path = directory / name
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        size = path.stat().st_size if path.is_file() else 0
        raise DatasetFormatError(
            f"{path}: not a readable .npy array ({size:,} bytes: truncated or corrupt: {error}); "
            f"prepare the dataset again ({_prepare_hint(directory)})"
        ) from None


#: Bytes of ``codes.npy`` scanned per step by :func:`_check_codes` (bounded memory on any size).
_CODES_CHUNK = 1 << 26


def _check_codes(directory: Path, codes: np.ndarray) -> None:
    """Refuse a ``codes.npy`` holding a byte that is no symbol code of a dataset (A C G T N: 0..4).

    A vectorised ``max()`` over the memmap in chunks of :data:`_CODES_CHUNK` bytes: one pass at
    memory speed (4 ms for 1M rows of 110 codes, 110 MB, once the file is cached), never the whole file
    in memory. An out-of-range code would otherwise index past the model's embedding.
    """
    from ..sequence import ALPHABET, N

    if codes.dtype != np.uint8 or codes.size == 0:
        return  # validate() reports a wrong dtype; nothing to scan in an empty dataset
    flat = codes.reshape(-1)
    for start in range(0, flat.size, _CODES_CHUNK):
        chunk = flat[start:start + _CODES_CHUNK]
        if int(chunk.max()) > N:
            position = start + int(np.argmax(chunk > N))
            row, column = divmod(position, codes.shape[1])
            raise DatasetFormatError(
                f"{directory / CODES}: row {row:,}, column {column}: code {int(flat[position])} is not a symbol code "
                f"(0..{N}: {', '.join(ALPHABET[:N + 1])}); the file is corrupt or was not written by proformer. "
                f"Prepare the dataset again ({_prepare_hint(directory)})"
            )


def read_dataset(directory: str | os.PathLike) -> DatasetArrays:
    """Open a dataset directory: ``meta.json`` checked, arrays memory-mapped, row counts checked.

    Only the ``.npy`` headers and ``lengths.npy`` are read into memory, and ``codes.npy`` is
    scanned once for out-of-range codes (:func:`_check_codes`, chunked); :func:`validate` checks more.

    Raises
    ------
    FileNotFoundError
        A required file (:data:`REQUIRED_FILES`) is missing.
    DatasetFormatError
        The version is not :data:`FORMAT_VERSION`, ``codes.npy`` is not 2-D or holds a code
        outside A C G T N (0..4), or the ``.npy``
        files and ``meta["rows_kept"]`` disagree on the number of rows.
    """
    directory = Path(directory)
    missing = [name for name in REQUIRED_FILES if not (directory / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"{directory} is not a prepared dataset (missing {', '.join(missing)}); create one with: {_prepare_hint(directory)}"
        )
    meta = read_meta(directory)
    codes = _load_array(directory, CODES, mmap_mode="r")
    if codes.ndim != 2:
        raise DatasetFormatError(
            f"{directory / CODES}: shape {codes.shape}, expected (rows, width); prepare the dataset again ({_prepare_hint(directory)})"
        )
    _check_codes(directory, codes)
    lengths = _load_array(directory, LENGTHS)
    targets = _load_array(directory, TARGETS, mmap_mode="r")
    if targets.ndim == 1:
        targets = targets[:, None]
    rows = {CODES: len(codes), LENGTHS: len(lengths), TARGETS: len(targets)}
    if (directory / INTEGER_TARGET).exists():
        rows[INTEGER_TARGET] = len(_load_array(directory, INTEGER_TARGET, mmap_mode="r"))
    if "rows_kept" in meta:
        rows[f"{META} rows_kept"] = meta["rows_kept"]
    _check_rows(directory, rows, "every file holds")
    return DatasetArrays(meta, codes, lengths, targets)


def validate(directory: str | os.PathLike) -> dict:
    """Check a dataset directory completely, as every writer does before :func:`publish` moves it.

    Beyond :func:`read_dataset`: the ``meta.json`` keys of :data:`META_KEYS`, one target name per
    column of ``targets.npy``, the dtypes of the arrays, every length within ``codes.npy``'s width,
    and the rows of ``windows.tsv`` when present.

    Returns
    -------
    dict
        ``meta.json``.

    Raises
    ------
    FileNotFoundError, DatasetFormatError
        Naming the file that is missing or wrong.
    """
    directory = Path(directory)
    meta, codes, lengths, targets = read_dataset(directory)
    hint = _prepare_hint(directory)
    absent = [key for key in META_KEYS if key not in meta]
    if absent:
        raise DatasetFormatError(f"{directory / META}: missing key(s) {', '.join(absent)}; prepare the dataset again ({hint})")
    if len(meta["target_names"]) != targets.shape[1]:
        raise DatasetFormatError(
            f"{directory}: {META} names {len(meta['target_names'])} target(s) {meta['target_names']} but {TARGETS} has "
            f"{targets.shape[1]} column(s); prepare the dataset again ({hint})"
        )
    expected = {CODES: (codes, "u"), LENGTHS: (lengths, "iu"), TARGETS: (targets, "f")}
    if (directory / INTEGER_TARGET).exists():
        expected[INTEGER_TARGET] = (np.load(directory / INTEGER_TARGET, mmap_mode="r"), "b")
    for name, (array, kinds) in expected.items():
        if array.dtype.kind not in kinds or (name == CODES and array.dtype != np.uint8):
            raise DatasetFormatError(f"{directory / name}: dtype {array.dtype} is not the format's; prepare the dataset again ({hint})")
    if len(lengths) and (lengths.min() < 0 or lengths.max() > codes.shape[1]):
        raise DatasetFormatError(
            f"{directory / LENGTHS}: lengths {int(lengths.min())}..{int(lengths.max())} do not fit the {codes.shape[1]} "
            f"columns of {CODES}; prepare the dataset again ({hint})"
        )
    if (directory / WINDOWS).exists():
        # A header line, then one line per row.
        lines = (directory / WINDOWS).read_bytes().splitlines()
        _check_rows(directory, {CODES: len(codes), f"{WINDOWS} (without its header)": max(len(lines) - 1, 0)}, "every file holds")
    return meta


def aside(directory: str | os.PathLike) -> Path:
    """Where :func:`publish` moves the old dataset while it renames the new one in:
    ``.NAME.old`` beside ``directory``."""
    directory = Path(directory)
    return directory.with_name(f".{directory.name}.old")


def _carry_over(old: Path, directory: Path) -> None:
    """Move the files the dataset format does not name (a user's notes) from ``old`` into
    ``directory`` where it has none of that name, then remove ``old``."""
    try:
        for entry in old.iterdir():
            if entry.name not in FILES and not (directory / entry.name).exists():
                os.replace(entry, directory / entry.name)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def recover(directory: str | os.PathLike) -> str | None:
    """Finish what a writer killed inside :func:`publish` left: the old dataset at :func:`aside`.

    Killed between its two renames (``directory`` absent, or an empty directory), the old
    dataset is renamed back to ``directory``, whole; killed after them, the new dataset is in
    place, so the old one's own files are carried over and the rest removed. Call it while no
    other writer publishes to ``directory`` (``proformer prepare`` holds its output's lock).

    Returns
    -------
    str or None
        ``"restored"``, ``"removed"``, or None when there was nothing to do.
    """
    directory = Path(directory)
    old = aside(directory)
    if not old.is_dir() or old.is_symlink():
        return None
    if directory.is_dir() and not directory.is_symlink() and not any(directory.iterdir()):
        directory.rmdir()  # an empty directory made since is no dataset: the old one goes back
    if not directory.exists() and not directory.is_symlink():
        os.rename(old, directory)
        return "restored"
    _carry_over(old, directory)
    return "removed"


def _swap_directory(staged: Path, directory: Path) -> None:
    """Put ``staged`` at ``directory`` (its sibling) as a whole; the old directory is removed.

    Two renames: the old directory aside (to :func:`aside`), the new one in. A reader finds the
    old dataset, none for that moment, or the new one, never a mix (``meta.json``, which makes
    a directory a dataset, is written last inside ``staged``). A failed second rename puts the
    old directory back; a writer killed between the two leaves it at :func:`aside`, where
    :func:`recover` (the next ``publish`` or ``prepare``) finds it. Files the dataset format
    does not name (a user's notes) are then moved from the old directory into the new one.
    """
    old = aside(directory)
    os.rename(directory, old)
    try:
        os.rename(staged, directory)
    except BaseException:
        os.rename(old, directory)
        raise
    _carry_over(old, directory)


def publish(staged: str | os.PathLike, directory: str | os.PathLike) -> dict:
    """Move a dataset written in ``staged`` to ``directory``, so that it appears complete or not at all.

    ``staged`` is validated first (:func:`validate`), and what an earlier writer killed inside
    ``publish`` left is recovered (:func:`recover`). When ``directory`` does not exist,
    ``staged`` is renamed to it: one atomic step, so ``staged`` must be on the same file system
    (a sibling, or inside ``directory``'s parent). When ``directory`` exists and ``staged`` is
    its sibling, the directory is replaced as a whole (:func:`_swap_directory`: old one aside,
    new one in), and other files in ``directory`` are carried over. Otherwise (``staged``
    elsewhere, e.g. inside ``directory``) the dataset files are replaced one by one:
    ``meta.json`` is removed first and moved in last, so that a reader meanwhile finds no
    dataset rather than new arrays with old metadata; dataset files the new dataset lacks are
    removed (an old ``windows.tsv`` would describe other rows). Other files in ``directory``
    are left alone.

    Returns
    -------
    dict
        ``meta.json`` of the published dataset.
    """
    staged, directory = Path(staged), Path(directory)
    meta = validate(staged)
    recover(directory.resolve())
    if not directory.exists():
        os.replace(staged, directory)
        return meta
    real = directory.resolve()  # a symlinked dataset directory: replace what it points to
    if real.is_dir() and staged.resolve().parent == real.parent:
        _swap_directory(staged.resolve(), real)
        return meta
    (directory / META).unlink(missing_ok=True)
    for name in FILES:
        if name == META:
            continue
        if (staged / name).exists():
            os.replace(staged / name, directory / name)
        else:
            (directory / name).unlink(missing_ok=True)
    os.replace(staged / META, directory / META)
    return meta


def is_integer_target(values: np.ndarray) -> np.ndarray:
    """bool ``(n,)``: the first target column of ``(n, n_targets)`` values is a whole number.

    DREAM's sequences measured once have integer expression values; ``integer_target.npy``
    stores this flag, and :class:`proformer.data.dataset.Dataset` computes it when the file is absent.
    """
    first = np.asarray(values)[:, 0]
    return first == np.floor(first)
