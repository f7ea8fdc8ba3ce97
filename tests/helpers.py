"""Helpers shared by the test modules (fixtures that use them are in conftest.py).

Import as ``from helpers import ...``: pytest puts tests/ on ``sys.path`` (the rootdir has no
``__init__.py`` here). The committed data under tests/fixtures/ is described in
tests/fixtures/make_fixtures.py.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import importlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import torch

import proformer
from proformer.cli import main
from proformer.config import load_run_config
from proformer.data.atac import prepare_atac
from proformer.data.prepare import (
    prepare,
)
from proformer.inference import units_text
from proformer.io.run import (
    RunInfo,
    TargetInfo,
    write_run_model,
)
from proformer.model import ModelConfig, Proformer
from proformer.score import (
    ScoreResult,
)
from proformer.sequence import (
    DREAM_HEAD,
    DREAM_TAIL,
    Layout,
    decode,
    encode,
    reverse_complement,
)
from proformer.train import history as train_history

#: The committed fixtures (tests/fixtures/make_fixtures.py writes them).
DATA = Path(__file__).resolve().parent / "fixtures"

#: A model small enough to train in seconds on a CPU: one block of width 16, 3-mers, 4 heads of
#: expression, no dropout. Settings as ``key=value`` strings come from :func:`as_overrides`.
TINY_MODEL = {"dim": 16, "heads": 2, "blocks": 1, "readout": 4, "kmer": 3, "dropout": 0}


def as_overrides(settings: dict) -> list[str]:
    """``{"dim": 16, "data.split": "hash:0.8"}`` -> ``["dim=16", "data.split=hash:0.8"]`` (``--set`` values)."""
    return [f"{key}={value}" for key, value in settings.items()]


def random_dna(rng: np.random.Generator, n: int, length: int, alphabet: str = "ACGT") -> list[str]:
    """``n`` random sequences of ``length`` symbols drawn uniformly from ``alphabet``."""
    letters = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    return [row.tobytes().decode() for row in letters[rng.integers(0, len(alphabet), (n, length))]]


def planted_tsv(path: Path, n: int, length: int, rule: Callable[[str], float], noise: float, seed: int,
                digits: int) -> Path:
    """Write ``n`` rows ``sequence<TAB>target`` of random ``length``-nt sequences whose target is
    ``rule(sequence)`` plus normal noise of sd ``noise``, written with ``digits`` decimals.

    Each row draws its sequence, then its noise, from one generator seeded with ``seed``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        sequence = random_dna(rng, 1, length)[0]
        rows.append(f"{sequence}\t{rule(sequence) + rng.normal(0, noise):.{digits}f}\n")
    path.write_text("".join(rows))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file with a header, as dictionaries."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_predictions(path: Path, column: int = 1) -> np.ndarray:
    """One column (default: the first prediction) of a ``sequence<TAB>prediction...`` file
    (predict's TSV: its header line, ``sequence<TAB>TARGET...``, is skipped)."""
    lines = Path(path).read_text().splitlines()
    if lines and lines[0].split("\t")[0] in ("sequence", "id"):
        lines = lines[1:]
    return np.array([float(line.split("\t")[column]) for line in lines])


def weight_distance(a: dict, b: dict) -> float:
    """Euclidean distance between two state dicts with the same keys (in float64)."""
    return sum((a[key] - b[key]).double().pow(2).sum() for key in a).sqrt().item()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads. Tiny models train ~5x faster on one thread than on
    two on a shared 2-core machine: with two threads each small op waits for a busy core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- interpretation: a run directory in a second, and a model with a known answer ---------------

#: The tiny run of :func:`write_tiny_run`: 20 positions per strand, flanks of 2 + 1 nt trimmed.
TINY_RUN_LENGTH, TINY_RUN_HEAD, TINY_RUN_TAIL = 20, 2, 1


def tiny_run_info(n_targets: int = 1, rc_average: bool = False, mean: list[float] | None = None,
                  std: list[float] | None = None):
    """The RunInfo of a random 20-position Proformer (dim 8, one block) with flanks 2 + 1; the
    target statistics are mean 1, std 2 for every target unless ``mean`` / ``std`` (one value
    per target) say otherwise."""

    names = ["expr"] if n_targets == 1 else [f"target{i}" for i in range(n_targets)]
    mean = [1.0] * n_targets if mean is None else [float(value) for value in mean]
    std = [2.0] * n_targets if std is None else [float(value) for value in std]
    if len(mean) != n_targets or len(std) != n_targets:
        raise ValueError(f"give one mean and one std per target ({n_targets})")
    return RunInfo(model=ModelConfig(kmer=3, dim=8, heads=1, blocks=1, readout=2, length=TINY_RUN_LENGTH,
                                     n_targets=n_targets),
                   layout=Layout(head=TINY_RUN_HEAD, tail=TINY_RUN_TAIL, length=TINY_RUN_LENGTH, pad="n"),
                   target=TargetInfo(names=names, mean=mean, std=std, standardized=True),
                   rc_average=rc_average, proformer_version="test")


def write_tiny_run(path: Path, seed: int = 0, **info_options) -> Path:
    """A run directory (config.json + weights.pt) of a randomly initialised tiny Proformer: the
    shapes, layout and units of a real run, written in well under a second."""
    import torch


    info = tiny_run_info(**info_options)
    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    write_run_model(path, Proformer(info.model).state_dict(), info)
    return path


def planted_motif_model(motif: str = "GATA", length: int = TINY_RUN_LENGTH):
    """A model with planted weights and a known answer: one convolution whose filter is the
    one-hot ``motif``, then ``relu(score - (len(motif) - 1))`` summed over positions, i.e. the
    number of exact ``motif`` matches on the forward strand (1 per match).

    It takes what a Proformer takes: codes ``(batch, 2 * length)`` (the forward half is read) or
    a one-hot forward strand ``(batch, 4, length)`` (differentiable, for attribution), and
    returns ``(batch,)``. Wrap it as ``proformer.inference.Run(planted_motif_model(), tiny_run_info())``.
    """
    import torch
    import torch.nn.functional as F

    class PlantedMotif(torch.nn.Module):
        def __init__(self):
            super().__init__()
            weight = torch.zeros(1, 4, len(motif))
            for offset, base in enumerate(motif):
                weight[0, "ACGT".index(base), offset] = 1.0
            self.filter = torch.nn.Parameter(weight)

        def forward(self, x: torch.Tensor, singleton=None) -> torch.Tensor:
            if not x.is_floating_point():
                forward = x[:, :length].long()
                x = F.one_hot(forward.clamp(max=4), 5)[..., :4].permute(0, 2, 1).float()  # N -> all zero
            score = F.conv1d(x.float(), self.filter)
            return F.relu(score - (len(motif) - 1)).sum(dim=(1, 2))

    return PlantedMotif().eval()


# -- shared by several test modules ---------------------------------------------------------

LENGTHS = {"chr1": 20_000, "chr2": 12_000, "chr3": 1_500}


GAP = ("chr1", 15_000, 15_500)  # no bigWig data here


N_RUN = ("chr2", 6_000, 6_400)  # Ns in the genome


BLACKLISTED = ("chr1", 10_800, 11_100)


# Summits: ordinary ones, one in soft-masked (lower-case) sequence, one by IUPAC codes, one in
# the signal gap, one blacklisted, one in the N run, two near the ends of the small chr3.
SUMMITS = [
    ("chr1", 2_000), ("chr1", 3_200), ("chr1", 9_000), ("chr1", 15_200), ("chr1", 11_000),
    ("chr2", 3_000), ("chr2", 6_200), ("chr2", 9_000), ("chr3", 200), ("chr3", 1_400),
]


def _genome_text(rng: np.random.Generator) -> dict[str, str]:
    sequences = {}
    for name, length in LENGTHS.items():
        sequences[name] = "".join(np.array(list("ACGT"))[rng.integers(0, 4, length)])
    chr1 = list(sequences["chr1"])
    chr1[3_000:3_500] = [c.lower() for c in chr1[3_000:3_500]]  # soft-masked repeat
    chr1[8_990:8_995] = list("RYKMS")  # IUPAC ambiguity codes read as N
    sequences["chr1"] = "".join(chr1)
    name, start, end = N_RUN
    sequences[name] = sequences[name][:start] + "N" * (end - start) + sequences[name][end:]
    return sequences


def _write_fasta(path: Path, sequences: dict[str, str]) -> None:
    with open(path, "w") as handle:
        for name, seq in sequences.items():
            handle.write(f">{name}\n")
            handle.write("".join(seq[i : i + 70] + "\n" for i in range(0, len(seq), 70)))


def _narrowpeak_lines(summits, names=None) -> str:
    lines = []
    for i, (chrom, summit) in enumerate(summits):
        chrom = names.get(chrom, chrom) if names else chrom
        if i == 1:  # column 10 = -1: the midpoint is the summit
            lines.append(f"{chrom}\t{summit - 120}\t{summit + 121}\tp{i}\t100\t.\t5.0\t-1\t-1\t-1\n")
        else:
            lines.append(f"{chrom}\t{summit - 100}\t{summit + 150}\tp{i}\t100\t.\t5.0\t-1\t-1\t100\n")
    return "track name=peaks\n" + "".join(lines)


def run(inputs, out: Path, **options) -> dict:
    kwargs = {"signal": inputs["signal"], "peaks": inputs["peaks"], "n": 1_000, "progress": False}
    kwargs.update(options)
    return prepare_atac(inputs["fasta"], out, **kwargs)


def _write_bam(path: Path, reads: list[tuple[str, int, int, int]]) -> None:
    """reads: (chrom, reference_start, length, flag); written sorted and indexed."""
    names = list(LENGTHS)
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": n, "LN": LENGTHS[n]} for n in names]}
    pysam = pytest.importorskip("pysam")
    with pysam.AlignmentFile(str(path), "wb", header=header) as bam:
        for i, (chrom, start, length, flag) in enumerate(sorted(reads, key=lambda r: (names.index(r[0]), r[1]))):
            read = pysam.AlignedSegment(bam.header)
            read.query_name = f"r{i}"
            read.flag = flag
            read.reference_id = names.index(chrom)
            read.reference_start = start
            read.mapping_quality = 60
            read.cigartuples = [(0, length)]
            read.query_sequence = "A" * length
            bam.write(read)
    pysam.index(str(path))


# The module itself, not the function that proformer.interpret may export under the same name.
attribute_module = importlib.import_module("proformer.interpret.attribute")


def one_line(capsys) -> str:
    """stderr, checked to be one line without a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def usage_error(capsys, argv: list[str]) -> str:
    """An argparse refusal: SystemExit(2) and one stderr line."""
    with pytest.raises(SystemExit) as stop:
        main([str(word) for word in argv])
    assert stop.value.code == 2
    return one_line(capsys)


HEAD, TAIL = "AGGACCGGATCAACT", "CATTGCGTGAACCGA"  # the lentiMPRA sample's primers


def prepare_cli(capsys, *args) -> tuple[int, str]:
    """``proformer prepare ARGS --no-progress`` in this process: (exit status, stderr)."""
    status = main(["prepare", *map(str, args), "--no-progress"])
    return status, capsys.readouterr().err


MINI = DATA / "dream_mini"


GOOD = DREAM_HEAD + "ACGT" * 20 + DREAM_TAIL


def _dream_input(path: Path, n: int, value: float) -> Path:
    path.write_text("".join(f"{GOOD}\t{value + i}\n" for i in range(n)))
    return path


def _staging(out: Path) -> list[Path]:
    """The staging folders of prepare runs into ``out``: ``.ds.prepare-XXXXXXXX`` beside or inside it."""
    return [p for p in (*out.parent.iterdir(), *(out.iterdir() if out.is_dir() else ()))
            if re.fullmatch(rf"\.{re.escape(out.name)}\.prepare-[a-z0-9_]{{8}}", p.name)]


OLD = b"the previous, complete file\n"


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _half_written_savefig(self, fname, *args, **kwargs):
    """A savefig that dies half-way: it has written part of the file when it fails."""
    with open(fname, "wb") as handle:
        handle.write(b"\x89PNG half")
    raise OSError(errno.ENOSPC, "No space left on device")


def _intact(path, old=OLD) -> None:
    assert path.read_bytes() == old, f"{path.name} was changed by a failed write"
    left = sorted(p.name for p in path.parent.iterdir() if p.name != path.name)
    assert not [name for name in left if name.startswith(".") or name.endswith((".tmp", ".part"))], left


def _metrics_rows() -> list[dict]:
    row = dict.fromkeys(train_history.METRIC_COLUMNS, "")
    row.update(epoch=0, step=1, lr=1e-3, train_mse=1.0, val_mse=1.0, train_reconstruction=1.0, val_pearson=0.1,
               val_spearman=0.1)
    return [row]


SEQUENCE = "ACGTACGTACGTACGTACGT"  # 20 nt: 17 after the flanks, inside the 20-position window


def one_line_error(err: str, *fragments: str) -> str:
    """The one non-blank line of ``err`` (no traceback), checked to hold every fragment."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def cli(*args) -> int:
    """``proformer ARGS --no-progress`` in this process: its exit status (argparse's refusals raise SystemExit)."""
    return main([str(arg) for arg in args] + ["--no-progress"])


def cli_status(*argv) -> int:
    """``proformer ARGV`` in this process (progress as given): its exit status, argparse's refusals included."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as stop:
        return stop.code


LENGTH = 24


LOCK = ".train.lock"  # proformer.train.rundir.LOCK


TRAIN_1_EPOCH = {**TINY_MODEL, "data.split": "hash:0.8", "batch_size": 64, "epochs": 1, "lr": 3e-3}


def make_dataset(root, name="planted", n=300, seed=0):
    source = planted_tsv(root / f"{name}.tsv", n, LENGTH, rule=lambda s: 2.0 * s.count("GAT") + s.count("C") / LENGTH,
                         noise=0.1, seed=seed, digits=5)
    prepare(source, root / name, trim=(0, 0), length=LENGTH, progress=False)
    return root / name


def tiny_config_hardening_train(small_planted_dataset, *overrides, **train):
    settings = [f"data.path={small_planted_dataset}", f"length={LENGTH}", *as_overrides(TRAIN_1_EPOCH)]
    settings += [f"train.{k}={v}" for k, v in train.items()] + list(overrides)
    return load_run_config(preset="grid", overrides=settings)






def no_temporaries(folder: Path) -> None:
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert not hidden, hidden


MEAN, STD = 1.0, 2.0  # helpers.tiny_run_info's target statistics


SEQUENCES_PREDICT_TABLES = random_dna(np.random.default_rng(7), 6, 21)  # 2 + 18 + 1 nt: inside the window


IDS = [f"enh_{i}" for i in range(len(SEQUENCES_PREDICT_TABLES))]




ARRAYS = ("codes", "lengths", "targets", "integer_target")


# A DREAM-like TSV: flanks around a variable core, lower case, N, integer and float targets, one
# row too long for the 100-nt layout (136 nt - 30 = 106 > 100) and one 130-nt row that just fits.
DREAM_ROWS = [
    (DREAM_HEAD + "ACGT" * 20 + DREAM_TAIL, "12"),
    (DREAM_HEAD.lower() + "acgtn" * 10 + DREAM_TAIL.lower(), "15.1823836007871"),
    (DREAM_HEAD + "N" * 3 + "GATTACA" + DREAM_TAIL, "0"),
    (DREAM_HEAD + "C" * 106 + DREAM_TAIL, "7"),  # too long: dropped
    (DREAM_HEAD + "T" * 100 + DREAM_TAIL, "3.5"),  # 130 nt: kept, the widest row
    (DREAM_HEAD + "GA" * 40 + DREAM_TAIL, "-1.25e-1"),
    (DREAM_HEAD + "AC" * 39 + DREAM_TAIL, "17"),
]


GOOD = DREAM_HEAD + "ACGT" * 20 + DREAM_TAIL


def dream_text_prepare(rows=DREAM_ROWS) -> str:
    return "".join(f"{sequence}\t{target}\n" for sequence, target in rows)


def write_prepare(path: Path, text: str | bytes) -> Path:
    """Write ``text``, gzip-compressed when the name ends in .gz."""
    data = text.encode() if isinstance(text, str) else text
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def load(directory: Path) -> dict[str, np.ndarray]:
    return {name: np.load(directory / f"{name}.npy") for name in ARRAYS}


def run_prepare(path: Path, out: Path, **kwargs) -> dict:
    kwargs.setdefault("progress", False)
    return prepare(path, out, **kwargs)


RNG = np.random.default_rng(14)


N_ROWS = 40


def dna(length: int) -> str:
    return "".join(RNG.choice(list("ACGT"), length))


SEQUENCES_PREPARE_TABLES = [dna(60) for _ in range(N_ROWS)]
SEQUENCES_PREPARE_TABLES[5] = SEQUENCES_PREPARE_TABLES[5].lower()  # lower case is DNA too


VALUES = [round(float(v), 3) for v in RNG.normal(size=N_ROWS)]
VALUES[7] = 2.0  # a whole number among the real ones: the column is still real-valued


def write_prepare_tables(path: Path, rows: list[list], delimiter: str = "\t") -> Path:
    text = "".join(delimiter.join(map(str, row)) + "\n" for row in rows)
    data = text.encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def lentimpra_rows() -> list[list]:
    """seq_id seq mean_value fold, as the lentiMPRA sample: a text id, the DNA, one real-valued
    target and an integer split column with few values."""
    header = ["seq_id", "seq", "mean_value", "fold"]
    return [header] + [[f"seq{i}_Reversed:", s, v, i % 10] for i, (s, v) in enumerate(zip(SEQUENCES_PREPARE_TABLES, VALUES))]


def arrays(directory: Path) -> tuple[list[str], np.ndarray]:
    codes, lengths = np.load(directory / "codes.npy"), np.load(directory / "lengths.npy")
    return decode(codes, lengths), np.load(directory / "targets.npy")




WINDOW = 28  # positions per strand; the rows have 16 to 24 nt, so shifts have room


RNG_RUN_COLUMNS = np.random.default_rng(26)


N_TRAIN, N_TEST, LENGTH_RUN_COLUMNS = 96, 24, 30


TRAIN_SEQUENCES = random_dna(RNG_RUN_COLUMNS, N_TRAIN, LENGTH_RUN_COLUMNS)


TEST_SEQUENCES = random_dna(RNG_RUN_COLUMNS, N_TEST, LENGTH_RUN_COLUMNS)


def gc(sequence: str) -> float:
    return (sequence.count("G") + sequence.count("C")) / len(sequence)


def headed_tsv(path, sequences, header=("seq_id", "seq", "mean_value", "fold")):
    """``seq_id seq mean_value fold``: an id (text), the DNA, a real-valued target, an integer fold."""
    lines = ["\t".join(header)]
    for i, sequence in enumerate(sequences):
        lines.append(f"id_{i}\t{sequence}\t{3 + 10 * gc(sequence) + 0.01 * i:.4f}\t{i % 5}")
    path.write_text("\n".join(lines) + "\n")
    return path






def edited_run(trained, name: str, edit) -> str:
    """A copy of the trained run whose config.json ``edit(values)`` changed."""
    copy = trained["root"] / name
    if not copy.exists():
        shutil.copytree(trained["run"], copy)
        values = json.loads((copy / "config.json").read_text())
        edit(values)
        (copy / "config.json").write_text(json.dumps(values, indent=2) + "\n")
    return copy


WHOLE = TINY_RUN_HEAD + TINY_RUN_LENGTH + TINY_RUN_TAIL  # a sequence the tiny run sees whole: 23 nt


def one_line_run_directory(message: str) -> str:
    assert "\n" not in message.strip(), message
    return message


N_PUBLIC = 9045


def _scores(result: ScoreResult) -> tuple[float, float]:
    return result.score_pearson_r2, result.score_spearman


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


LENGTH_SWEEP = 12




# The tiny model and the recipe of these runs (a run's own changes come after).
TRAIN_2_EPOCHS = {**TINY_MODEL, "data.split": "hash:0.8", "batch_size": 64, "epochs": 2, "lr": 3e-3}


def planted_table(path, n=2000, seed=0):
    """Sequences of LENGTH nt whose target is a count of GATA plus C content, with noise."""
    return planted_tsv(path, n, LENGTH, rule=lambda s: 2.0 * s.count("GAT") + 4 * s.count("C") / LENGTH, noise=0.1,
                       seed=seed, digits=5)


def tiny_config_train(planted_dataset, **train):
    overrides = [f"data.path={planted_dataset}", f"length={LENGTH}", *as_overrides(TRAIN_2_EPOCHS)]
    overrides += [f"train.{k}={v}" for k, v in train.items()]
    return load_run_config(preset="grid", overrides=overrides)




TRIM = (2, 1)  # not a table's default (0, 0): a validation file prepared with it was prepared like the training set


TRAIN_3_EPOCHS = {**TINY_MODEL, "data.split": "hash:0.8", "batch_size": 64, "epochs": 3, "lr": 3e-3}


HEADER = ("seq_id", "seq", "mean_value", "fold")  # lentiMPRA's columns


def lenti_table(path, n, seed, columns=HEADER):
    """A headed TSV like the lentiMPRA sample: id, sequence, a real-valued target, an integer fold."""
    rng = np.random.default_rng(seed)
    sequences = random_dna(rng, n, LENGTH)
    rows = []
    for i, sequence in enumerate(sequences):
        value = {"seq_id": f"s{seed}_{i}", "seq": sequence, "fold": str(i % 5),
                 "mean_value": f"{sequence.count('G') / LENGTH + rng.normal(0, 0.05):.4f}"}
        rows.append("\t".join(value[c] for c in columns))
    path.write_text("\t".join(columns) + "\n" + "\n".join(rows) + "\n")
    return path


def settings(lenti_dataset, **changes):
    return [f"--set={o}" for o in [f"data.path={lenti_dataset}", *as_overrides({**TRAIN_3_EPOCHS, **changes})]]




def epoch_lines(err):
    return [line for line in err.splitlines() if re.match(r"epoch \d+/\d+: ", line)]


NAMES = ["Dev_log2_enrichment", "Hk_log2_enrichment"]  # DeepSTARR's two targets




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


RNG_TRAINING_IDEAS = np.random.default_rng(7)


def rc(sequence: str) -> str:
    return decode(reverse_complement(encode(sequence)))[0]


def random_dna_training_ideas(n: int) -> str:
    """One random sequence of ``n`` nt from the module's generator (drawn in test order)."""
    return random_dna(RNG_TRAINING_IDEAS, 1, n)[0]


def dream_table(path, n=400, seed=0):
    """DREAM-shaped rows (head + 80 nt + tail) with mean-bin targets in [0, 17]: about half of
    them integers (singletons), the rest fractional; the target follows the GAT count."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        core = random_dna(rng, 1, 80 - (i % 3))[0]  # 78-80 nt: odd and even padding
        value = min(17.0, 2.0 * core.count("GAT") + rng.normal(0, 0.5) + 3)
        value = max(0.0, float(round(value)) if i % 2 else round(value, 3))
        rows.append(f"{DREAM_HEAD}{core}{DREAM_TAIL}\t{value}\n")
    path.write_text("".join(rows))
    return path


SEQUENCES_UNITS = random_dna(np.random.default_rng(11), 4, 22)  # 2 + 19 + 1 nt: inside the 20-position window


Z_UNITS = units_text(True)


@dataclass
class Case:
    """A model under test: its run directories and what the units conversion must use."""

    name: str
    dirs: list[Path]
    mean: np.ndarray  # (n_targets,)
    std: np.ndarray
    target: int  # the target the interpretation checks analyse
    names: list[str]

    @property
    def model_arg(self):
        """What ``proformer.load`` and the run_* functions take: a path, or a list (an ensemble)."""
        return self.dirs[0] if self.name != "ensemble" else list(self.dirs)

    def cli_models(self) -> list[str]:
        return ["--model", *map(str, self.dirs)]

    def cli_target(self) -> list[str]:
        return ["--target-name", self.names[self.target]] if len(self.names) > 1 else []

    def load(self):
        return proformer.load(self.model_arg, "cpu")

    def raw(self, sequences) -> np.ndarray:
        """float64 ``(n, n_targets)``: the model's own output (the mean of the members' for an
        ensemble), from ``Run.model_output`` of the sequences laid out by each run."""
        outputs = []
        for directory in self.dirs:
            run = proformer.load(directory, "cpu")
            outputs.append(run.model_output(run.lay_out(sequences).codes).double().numpy())
        return np.mean(outputs, axis=0)

    def units(self, sequences) -> np.ndarray:
        """float64 ``(n, n_targets)``: the same in training units."""
        return self.raw(sequences) * self.std + self.mean




def read_table_units(path) -> tuple[list[str], list[list[str]]]:
    header, *rows = Path(path).read_text().splitlines()
    return header.split("\t"), [row.split("\t") for row in rows]


def write_lines(path: Path) -> Path:
    path.write_text("\n".join(SEQUENCES_UNITS) + "\n")
    return path


def mutant(sequence: str, position: int, base: str) -> str:
    return sequence[:position] + base + sequence[position + 1 :]


def cli_script(tmp_path: Path, setup: str = "") -> Path:
    """A script running the command line (after ``setup``, Python lines): Lightning starts the
    other processes of ``--devices N`` by running it again."""
    script = tmp_path / "proformer_cli.py"
    script.write_text(f"import sys\n{setup}from proformer.cli import main\nsys.exit(main())\n")
    return script


def beside_processes(script: Path, commands: dict[str, list[str]], meanwhile: Callable[[], None]) -> dict[str, tuple]:
    """``python script ARGS`` for each of ``commands`` (name -> ARGS) while ``meanwhile`` runs in
    this process; each one's ``(returncode, stdout, stderr)``. None outlives the test."""
    started = {name: subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for name, args in commands.items()}
    try:
        meanwhile()
        done = {name: process.communicate(timeout=300) for name, process in started.items()}
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    return {name: (started[name].returncode, *done[name]) for name in started}


# -- genome tracks (tests/tracks) ------------------------------------------------------------

#: The tiny ATAC-shaped run: 40-bp windows, the prediction describes bases 15..24.
TRACK_WINDOW, TRACK_TARGET = 40, (15, 25)
TRACK_LENGTHS = {"chr1": 1_037, "chr2": 433, "chrM": 30}  # chrM: shorter than a window
TRACK_N_RUN = ("chr2", 200, 260)  # N in the genome: windows over it have too many N


def write_atac_run(path: Path, seed: int = 0, n_targets: int = 1, transform: str = "none") -> Path:
    """A randomly initialised Proformer reading 40-bp windows, with the ``data.atac`` record a run
    trained on ``atac prepare --window 40 --center 10`` has."""
    names = ["atac_signal"] if n_targets == 1 else [f"track{i}" for i in range(n_targets)]
    info = RunInfo(model=ModelConfig(kmer=3, dim=8, heads=1, blocks=1, readout=2, length=TRACK_WINDOW, n_targets=n_targets),
                   layout=Layout(head=0, tail=0, length=TRACK_WINDOW, pad="n"),
                   target=TargetInfo(names=names, mean=[1.0] * n_targets, std=[2.0] * n_targets, standardized=True),
                   data={"atac": {"window": TRACK_WINDOW, "target_span": list(TRACK_TARGET), "transform": transform}},
                   proformer_version="test")
    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    write_run_model(path, Proformer(info.model).state_dict(), info)
    return path
