"""Fixtures shared by the test modules (plain helper functions are in helpers.py)."""

import gzip
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    BLACKLISTED,
    GAP,
    LENGTH,
    LENGTHS,
    SUMMITS,
    TEST_SEQUENCES,
    TINY_MODEL,
    TINY_RUN_LENGTH,
    TRAIN_SEQUENCES,
    WINDOW,
    Case,
    _genome_text,
    _narrowpeak_lines,
    _write_fasta,
    as_overrides,
    cli,
    dream_table,
    headed_tsv,
    planted_table,
    random_dna,
    tiny_config_train,
    torch_threads,
    write_tiny_run,
)

from proformer.data.genome_sim import write_bigwig
from proformer.data.prepare import prepare
from proformer.train import train

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _require(path: Path, what: str) -> Path:
    """Skip when the project's read-only ../shared data is absent (a user's fresh clone);
    fail under CI=true, where it is always present."""
    if not path.exists():
        reason = f"{what} not found at {path} (expected the project's shared/ folder beside the repository)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must provide it.")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    _require(SHARED / "data", "shared data directory")
    return SHARED


@pytest.fixture(scope="session")
def dream_dir() -> Path:
    """The DREAM 2022 folder: public_leaderboard/, test_subsets/, peer_predictions/, ..."""
    path = SHARED / "data" / "dream2022"
    _require(path / "public_leaderboard" / "ground.json", "DREAM 2022 data")
    return path


@pytest.fixture
def one_thread():
    """One torch thread for the test (see helpers.torch_threads: tiny models train faster so)."""
    with torch_threads(1):
        yield


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder on a read-only file system (a tmpfs mounted ro), where even root cannot write."""
    path = tmp_path / "ro"
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({done.stderr.decode().strip()[:80]})")
    yield path
    subprocess.run(["umount", str(path)], check=False)


@pytest.fixture
def unreadable(monkeypatch):
    """``unreadable(path)``: from then on, opening ``path`` from Python raises PermissionError.

    Root reads files whatever their mode, so ``chmod 000`` cannot make an unreadable file in
    this container; this raises what ``open`` raises for a non-root user (errno 13, the path).
    """
    import builtins
    import io

    real_open, blocked = builtins.open, set()

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)) in blocked:
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    return lambda path: blocked.add(os.path.abspath(os.fspath(path)))


@pytest.fixture(autouse=True)
def lightning_logs_to_this_tests_stderr():
    """Point Lightning's console handler at the stderr of the test about to run.

    Lightning adds a StreamHandler bound to whatever ``sys.stderr`` was when it was first imported;
    when that was a finished test's captured stream (closed by then), every later Lightning log
    line ends in a logging traceback on stderr, and tests that read stderr fail by test order.
    """
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        for handler in logging.getLogger(name).handlers:
            if type(handler) is logging.StreamHandler:
                handler.stream = sys.stderr  # not setStream(): it flushes the old, maybe closed, stream
    yield


# -- shared by test modules in several folders ------------------------------------------------

@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> dict:
    """Genome FASTA, per-base bigWig with a gap, narrowPeak, BED of summits, blacklist."""
    root = tmp_path_factory.mktemp("atac_inputs")
    rng = np.random.default_rng(7)
    sequences = _genome_text(rng)
    _write_fasta(root / "genome.fa", sequences)
    values = {name: rng.gamma(2.0, 1.5, length).astype(np.float32) for name, length in LENGTHS.items()}
    values[GAP[0]] = values[GAP[0]].astype(np.float64)
    values[GAP[0]][GAP[1] : GAP[2]] = np.nan
    write_bigwig(root / "signal.bw", values)
    (root / "peaks.narrowPeak").write_text(_narrowpeak_lines(SUMMITS))
    # BED of summits: 1-bp records, and one wider interval whose midpoint is the summit.
    bed = "".join(f"{c}\t{s}\t{s + 1}\n" for c, s in SUMMITS[:-1]) + f"chr3\t{1_400 - 10}\t{1_400 + 10}\tx\n"
    (root / "summits.bed.gz").write_bytes(gzip.compress(bed.encode()))
    (root / "blacklist.bed").write_text(f"# excluded\n{BLACKLISTED[0]}\t{BLACKLISTED[1]}\t{BLACKLISTED[2]}\nchrUn_x\t0\t10\n")
    return {"root": root, "fasta": root / "genome.fa", "signal": root / "signal.bw", "peaks": root / "peaks.narrowPeak",
            "bed": root / "summits.bed.gz", "blacklist": root / "blacklist.bed", "sequences": sequences}


@pytest.fixture
def tiny_run_dir(tmp_path) -> Path:
    return write_tiny_run(tmp_path / "run")


@pytest.fixture
def sequences_file(tmp_path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("".join(s + "\n" for s in random_dna(np.random.default_rng(0), 3, TINY_RUN_LENGTH + 3)))
    return path


@pytest.fixture(scope="session")
def lentimpra(shared_dir) -> Path:
    return shared_dir / "data" / "mpra" / "human_lentimpra_sample_train.txt"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A random tiny run (helpers.write_tiny_run, seed 0), shared by every test that only reads it."""
    return write_tiny_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    return write_tiny_run(tmp_path_factory.mktemp("one") / "run", seed=1)


@pytest.fixture(scope="session")
def rc_dataset(tmp_path_factory):
    """240 rows of 16-24 nt in a 28-position window; every third target an integer (a
    singleton, for data.singleton_flag)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(240):
        sequence = random_dna(rng, 1, int(rng.integers(16, 25)))[0]
        target = 2.0 * sequence.count("GAT") + 4 * sequence.count("C") / len(sequence) + rng.normal(0, 0.1)
        lines.append(f"{sequence}\t{round(target) if i % 3 == 0 else round(target, 5)}\n")
    (root / "rows.tsv").write_text("".join(lines))
    prepare(root / "rows.tsv", root / "rows", trim=(0, 0), length=WINDOW, progress=False)
    return root / "rows"


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("columns")
    train = headed_tsv(root / "train.tsv", TRAIN_SEQUENCES)
    recipe = {**TINY_MODEL, "epochs": 1, "batch_size": 32, "data.split": "hash:0.8"}
    with torch_threads(1):
        assert cli("prepare", train, "--out", root / "data") == 0
        sets = [part for setting in as_overrides(recipe) for part in ("--set", setting)]
        assert cli("train", "--data", root / "data", "--out", root / "run", *sets) == 0
    return {"run": root / "run", "test": headed_tsv(root / "test.tsv", TEST_SEQUENCES), "root": root}


@pytest.fixture(scope="session")
def planted_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    prepare(planted_table(root / "planted.tsv"), root / "planted", trim=(0, 0), length=LENGTH, progress=False)
    return root / "planted"


@pytest.fixture(scope="session")
def trained_run(planted_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    config = tiny_config_train(planted_dataset, epochs=4)
    with torch_threads(1):
        result = train(config, run_dir, progress=False)
    return run_dir, result


@pytest.fixture(scope="session")
def dream_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ideas")
    prepare(dream_table(root / "dream.txt"), root / "data", progress=False)
    return root / "data"


@pytest.fixture(scope="session", params=["one", "two", "ensemble"])
def case(request, tmp_path_factory) -> Case:
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "one":
        mean, std = [5.0], [0.25]
        dirs = [write_tiny_run(root / "run", seed=1, rc_average=True, mean=mean, std=std)]
        return Case("one", dirs, np.array(mean), np.array(std), 0, ["expr"])
    mean, std = [-3.0, 7.0], [0.5, 4.0]
    seeds = [2] if request.param == "two" else [3, 4]
    dirs = [write_tiny_run(root / f"run{seed}", seed=seed, n_targets=2, mean=mean, std=std) for seed in seeds]
    return Case(request.param, dirs, np.array(mean), np.array(std), 1, ["target0", "target1"])


@pytest.fixture
def genome_files(tmp_path: Path) -> tuple[Path, Path, str]:
    """A 200-nt chr1 (soft-masked stretches, an IUPAC R) and chr2; a VCF over chr1."""
    rng = np.random.default_rng(4)
    chr1 = list(random_dna(rng, 1, 200)[0])
    for i in list(range(40, 60)) + list(range(105, 116)):
        chr1[i] = chr1[i].lower()
    chr1[75] = "R"
    chr1 = "".join(chr1)
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">chr1\n" + "\n".join(chr1[i : i + 60] for i in range(0, 200, 60)) + "\n>chr2\n"
                     + random_dna(rng, 1, 60)[0] + "\n")
    g = chr1.upper()

    def other(base: str) -> str:
        return "ACGT"[("ACGT".index(base) + 1) % 4]

    multi = [b for b in "ACGT" if b != g[149]][:2]
    records = [
        ("chr1", 50, "snv1", g[49], other(g[49])),                  # line 3
        ("chr1", 80, "ins1", g[79], g[79] + "GGG"),                 # line 4
        ("chr1", 120, ".", g[119:123], g[119]),                     # line 5: a 3-nt deletion
        ("chr1", 150, "multi", g[149], ",".join(multi)),            # line 6: two rows
        ("chr1", 160, "sym", g[159], "<DEL>"),                      # line 7: symbolic
        ("chr1", 3, "edge", g[2], other(g[2])),                     # line 8: window off the start
        ("chr1", 170, "bad", other(g[169]), g[169]),                # line 9: REF mismatch
        ("chr1", 195, "end", g[194], other(g[194])),                # line 10: window off the end
    ]
    vcf = tmp_path / "variants.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"{c}\t{p}\t{i}\t{r}\t{a}\t.\tPASS\t.\n" for c, p, i, r, a in records))
    return fasta, vcf, chr1
