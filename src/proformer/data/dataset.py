"""Prepared datasets on disk -> splits -> model-ready batches.

A dataset directory (``docs/dataset-format.md``) holds sequences as read. Everything a model
wants (flank trimming, centre padding, the reverse complement, standardised targets, mask-filling
positions) is applied here to a whole batch at once, sliced straight from the memory-mapped
arrays: no per-sample Python.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..io.dataset import INTEGER_TARGET, is_integer_target, read_dataset
from ..model.proformer import swap_strands
from ..sequence import Layout, N
from .augment import augment


class Dataset:
    """A prepared dataset directory, memory-mapped.

    Attributes
    ----------
    codes : np.ndarray
        uint8 memmap ``(n, width)``.
    lengths : np.ndarray
        ``(n,)``.
    targets : np.ndarray
        float32 ``(n, n_targets)``.
    meta : dict
        Contents of meta.json.

    Raises
    ------
    FileNotFoundError, proformer.io.dataset.DatasetFormatError
        As :func:`proformer.io.dataset.read_dataset`: a missing file, another format version,
        or files that disagree on the number of rows.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.meta, self.codes, self.lengths, self.targets = read_dataset(self.directory)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def n_targets(self) -> int:
        return self.targets.shape[1]

    def layout(self, head: int | None = None, tail: int | None = None, length: int | None = None, pad: str = "n") -> Layout:
        """The dataset's own layout (meta.json ``transforms``), with optional overrides."""
        stored = self.meta.get("transforms", {})
        return Layout(
            head=stored.get("head", 0) if head is None else head,
            tail=stored.get("tail", 0) if tail is None else tail,
            length=stored.get("length", int(self.lengths.max(initial=1))) if length is None else length,
            pad=pad,
        )

    def integer_target(self) -> np.ndarray:
        """bool ``(n,)``: the row's (first) target is an integer, i.e. DREAM's singletons, sequences
        measured once (``integer_target.npy`` from prepare; computed from the targets if absent)."""
        path = self.directory / INTEGER_TARGET
        if path.exists():
            return np.load(path)
        if not self.n_targets:
            return np.zeros(len(self), dtype=bool)
        return is_integer_target(np.asarray(self.targets))


def mask_draws(rows: np.ndarray, epoch: int, seed: int, positions: int) -> np.ndarray:
    """Uniform [0, 1) draws keyed by (seed, epoch, row, position): ``(batch, positions)``.

    A counter-based generator (splitmix64 of the key), so a row's mask does not depend on which
    batch, process or device it lands in: single-process and DDP runs mask identically.
    """
    with np.errstate(over="ignore"):
        key = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)) ^ (np.uint64(epoch) * np.uint64(0xBF58476D1CE4E5B9))
        z = key + rows.astype(np.uint64)[:, None] * np.uint64(positions) + np.arange(positions, dtype=np.uint64)[None, :]
        z = z * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


SINGLETON_FLAGS = ("off", "measured", "zero")


def with_rc_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """The training ids of ``data.rc_rows``: ``rows``, then the ids of their reverse complements.

    Parameters
    ----------
    rows : np.ndarray
        ``(m,)`` row indices into a dataset of ``n`` rows.
    n : int
        The dataset's number of rows.

    Returns
    -------
    np.ndarray
        int64 ``(2 * m,)``: ``rows`` followed by ``rows + n``. A ``BatchBuilder(rc_rows=True)``
        gives id ``row + n`` as the reverse complement of ``row``; a :class:`ShardedBatchSampler`
        over these ids shuffles, batches and shards both kinds of rows like any others.
    """
    rows = np.asarray(rows, dtype=np.int64)
    return np.concatenate([rows, rows + n])


class BatchBuilder(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches: ``builder[(epoch, rows)] -> dict``.

    Parameters
    ----------
    dataset : Dataset
    layout : Layout
    target_mean, target_std : np.ndarray or None
        ``(n_targets,)``; targets are returned as ``(y - mean) / std`` when given.
    mask_ratio : float
        Mask-filling rate; 0 (validation, prediction) returns no mask.
    seed : int
        Key of the mask and shift draws.
    shift : int
        Training augmentation: each row moves up to ``shift`` positions either way within its
        padding (uniform, keyed by (seed, epoch, row) like the masks); 0 keeps it centred.
    singleton_flag : "off", "measured" or "zero"
        The model input ``data.singleton_flag``: ``measured`` adds ``batch["singleton"]`` (float
        ``(batch,)``), 1 where the row's target is an integer (measured once, see
        :meth:`Dataset.integer_target`); ``zero`` adds it as all zeros, which is how validation
        builders judge the model: as it predicts. ``off`` adds nothing.
    rc_rows : bool
        The training augmentation ``data.rc_rows``: ids ``n .. 2n - 1`` (``n = len(dataset)``,
        see :func:`with_rc_rows`) are the reverse complements of rows ``0 .. n - 1``: the codes of
        row ``i`` with the two strand halves swapped (:func:`proformer.model.swap_strands`), and
        row ``i``'s target and singleton flag. Each id draws its own mask, keyed by the id
        (``n + i`` for an RC row), so masks stay a function of (seed, epoch, id). The shift is
        keyed by the sequence (``i`` for both), so an RC row is exactly the reverse complement of
        its forward row as laid out that epoch, shift included.
    augment : tuple of str
        ``data.augment``'s augmentations (:func:`proformer.data.augment.augment`), applied to the
        stored rows of epochs before ``augment_until``, keyed by (seed, epoch, stored row) like
        the shift; the layout's flanks are kept.

    Items are ``(epoch, ids)`` with ``ids`` ``(batch,)``; a batch holds ``codes`` uint8
    ``(batch, 2 * length)``, ``rows`` int64 ``(batch,)`` (the ids as given), ``targets``
    float32 ``(batch, n_targets)`` when the dataset has targets, and ``mask`` bool
    ``(batch, 2 * length)`` and ``singleton`` float ``(batch,)`` as described above.
    """

    def __init__(self, dataset: Dataset, layout: Layout, target_mean=None, target_std=None, mask_ratio: float = 0.0,
                 seed: int = 0, shift: int = 0, singleton_flag: str = "off", rc_rows: bool = False,
                 augment: tuple[str, ...] = (), augment_until: int = 0):
        self.dataset, self.layout = dataset, layout
        self.augment, self.augment_until = tuple(augment), augment_until
        self.mean = None if target_mean is None else np.asarray(target_mean, dtype=np.float32)
        self.std = None if target_std is None else np.asarray(target_std, dtype=np.float32)
        self.mask_ratio, self.seed, self.shift, self.rc_rows = mask_ratio, seed, shift, rc_rows
        if singleton_flag not in SINGLETON_FLAGS:
            raise ValueError(f"singleton_flag={singleton_flag!r}: valid values are {', '.join(SINGLETON_FLAGS)}")
        self.singleton_flag = singleton_flag
        self.measured_once = dataset.integer_target().astype(np.float32) if singleton_flag == "measured" else None

    def __len__(self) -> int:  # pragma: no cover - items are keyed by batches, not counted
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, np.ndarray]) -> dict[str, torch.Tensor]:
        epoch, rows = item
        rows = np.asarray(rows)
        # rows: the sampler's ids; source: the stored row each one reads (its own, or with
        # rc_rows the row an id >= n is the reverse complement of).
        reverse = rows >= len(self.dataset) if self.rc_rows else np.zeros(len(rows), dtype=bool)
        source = np.where(reverse, rows - len(self.dataset), rows)
        # Memmaps read fastest in sorted order; restore the sampler's order afterwards.
        order = np.argsort(source, kind="stable")
        sorted_rows = source[order]
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        shifts = None
        if self.shift:
            # Column 0 of the draws, with the epoch offset so shifts are independent of the masks.
            # Keyed by the stored row, so an RC row is the reverse complement of the very sequence
            # its forward row shows, shift included: a shift s right in the forward half is a
            # shift s left in the swapped one, and the draws are symmetric, so RC rows see the
            # same spread of shifts.
            draw = mask_draws(source, epoch + (1 << 20), self.seed, 1)[:, 0]
            shifts = (np.floor(draw * (2 * self.shift + 1)).astype(np.int64) - self.shift)[order]
        stored, lengths = np.asarray(self.dataset.codes[sorted_rows]), self.dataset.lengths[sorted_rows]
        if self.augment and epoch < self.augment_until:
            stored = augment(stored, lengths, sorted_rows, epoch, self.seed, self.augment, self.layout.head,
                             self.layout.tail)
        codes = torch.from_numpy(self.layout.apply(stored, lengths, shifts)[inverse])
        if reverse.any():
            # One home for "the reverse complement of a laid-out row": the model's swap_strands.
            flip = torch.from_numpy(reverse)
            codes[flip] = swap_strands(codes[flip])
        batch = {"codes": codes, "rows": torch.from_numpy(rows.astype(np.int64))}
        if self.singleton_flag == "measured":
            batch["singleton"] = torch.from_numpy(self.measured_once[source])
        elif self.singleton_flag == "zero":
            batch["singleton"] = torch.zeros(len(rows))
        if self.dataset.n_targets:
            targets = np.asarray(self.dataset.targets[sorted_rows], dtype=np.float32)[inverse]
            if self.mean is not None:
                targets = (targets - self.mean) / self.std
            batch["targets"] = torch.from_numpy(targets)
        if self.mask_ratio > 0:
            # Keyed by the id, not the stored row: an RC row masks independently of its forward row.
            draws = mask_draws(rows, epoch, self.seed, codes.shape[1])
            batch["mask"] = torch.from_numpy((draws < self.mask_ratio) & (codes.numpy() != N))
        return batch


class ShardedBatchSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, rows)`` for this process's share of each global batch.

    Training (``shuffle=True``): every epoch is one seeded permutation of ``indices`` cut into
    ``ceil(n / batch_size)`` global batches of exactly ``batch_size`` rows (the last one wraps
    around to the start), and rank r of w processes takes rows ``r::w`` of each global batch.
    So every process runs the same number of steps and a DDP run sees the same global batches
    as a single process. Evaluation (``shuffle=False``): each rank takes a contiguous block of
    ``indices`` in order, no padding, so every row is predicted exactly once.
    """

    def __init__(self, indices: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0, rank: int | None = None, world: int | None = None):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = min(batch_size, max(len(self.indices), 1))
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self._rank, self._world = rank, world

    @property
    def rank_world(self) -> tuple[int, int]:
        """This process's rank and the number of processes, read when iteration starts (after
        DDP has initialised), unless given explicitly."""
        if self._rank is not None and self._world is not None:
            rank, world = self._rank, self._world
        elif torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        else:
            rank, world = 0, 1
        if self.shuffle and self.batch_size % world:
            raise ValueError(f"batch_size={self.batch_size} must be divisible by the number of processes ({world})")
        return rank, world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.shuffle:
            return math.ceil(len(self.indices) / self.batch_size)
        share = len(self._eval_rows())
        return math.ceil(share / self.batch_size)

    def _eval_rows(self) -> np.ndarray:
        rank, world = self.rank_world
        return np.array_split(self.indices, world)[rank]

    def __iter__(self):
        if not self.shuffle:
            rows = self._eval_rows()
            for start in range(0, len(rows), self.batch_size):
                yield self.epoch, rows[start : start + self.batch_size]
            return
        order = self.indices[np.random.default_rng([self.seed, self.epoch]).permutation(len(self.indices))]
        n_batches = len(self)
        order = np.resize(order, n_batches * self.batch_size)  # wrap around to fill the last batch
        rank, world = self.rank_world
        for batch in order.reshape(n_batches, self.batch_size):
            yield self.epoch, batch[rank::world]


def loader(builder: BatchBuilder, sampler: ShardedBatchSampler, num_workers: int = 0,
           pin_memory: bool | None = None) -> torch.utils.data.DataLoader:
    """A DataLoader over whole batches (no per-sample collation).

    ``pin_memory`` (default: whether CUDA is available) puts each batch in page-locked memory, so
    Lightning's copy to the GPU (``non_blocking=True``) overlaps with the step still running.
    """
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return torch.utils.data.DataLoader(
        builder, sampler=sampler, batch_size=None, num_workers=num_workers, persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
    )


def target_statistics(dataset: Dataset, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (float64 accumulation) of the targets of ``rows``."""
    values = np.asarray(dataset.targets[np.sort(rows)], dtype=np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)
    if (std == 0).any():
        column = int(np.flatnonzero(std == 0)[0])
        raise ValueError(f"{dataset.directory}: target column {column} is constant over the training rows; nothing to learn")
    return mean, std


#: Largest target magnitude training accepts: the square of a larger value overflows float32
#: (the loss becomes inf), and standardising it squeezes every other row to one value.
TARGET_LIMIT = 1e15


def check_targets(dataset: Dataset, rows: np.ndarray, what: str = "training") -> None:
    """Raise ValueError naming the dataset, the first bad row (0-based) and its value when a target
    of ``rows`` is NaN, infinite or beyond +-:data:`TARGET_LIMIT`: such a row turns the loss or
    the validation metrics into NaN."""
    rows = np.sort(np.asarray(rows))
    for start in range(0, len(rows), 1 << 20):  # bounded memory on large memory-mapped sets
        part = rows[start : start + (1 << 20)]
        values = np.asarray(dataset.targets[part], dtype=np.float64)
        bad = ~np.isfinite(values) | (np.abs(values) > TARGET_LIMIT)
        if bad.any():
            index, column = np.argwhere(bad)[0]
            value = float(values[index, column])
            names = dataset.meta.get("target_names") or []
            name = names[column] if column < len(names) else f"column {column}"
            problem = "is not a finite number" if not np.isfinite(value) else f"is beyond +-{TARGET_LIMIT:g}"
            raise ValueError(
                f"{dataset.directory}: row {int(part[index])} (0-based, a {what} row) has target {name} = {value!r}, "
                f"which {problem}; training on it gives a NaN loss or NaN metrics. Fix or drop the row "
                f"(prepare the dataset again), or rescale the targets"
            )


def check_layout(dataset: Dataset, layout: Layout, kmer: int, head_key: str = "data.head", tail_key: str = "data.tail") -> None:
    """Raise ValueError when trimming ``layout.head`` + ``layout.tail`` leaves every row empty, or
    when no k-mer of ``kmer`` fits in the longest trimmed row; the message names the keys."""
    longest = int(dataset.lengths.max(initial=0))
    kept = longest - layout.head - layout.tail
    if kept <= 0:
        raise ValueError(
            f"{head_key}={layout.head} + {tail_key}={layout.tail} trims {layout.head + layout.tail} nt, but the longest "
            f"row of {dataset.directory} has {longest} nt: every sequence would be empty. Use flanks that add up to "
            f"less than {longest} (null takes the dataset's own, meta.json transforms)"
        )
    if kmer > kept:
        raise ValueError(
            f"model.kmer={kmer} is longer than the longest sequence the model sees ({kept} nt after trimming "
            f"{dataset.directory}'s rows): no k-mer fits. Set --set kmer= a value <= {kept}"
        )

