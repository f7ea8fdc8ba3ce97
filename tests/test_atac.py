"""proformer.data.atac: genome + signal + summits -> ATAC window datasets (docs/model.md section 7)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

pyBigWig = pytest.importorskip("pyBigWig")
pysam = pytest.importorskip("pysam")
pytest.importorskip("pyfaidx")

from proformer.data.atac import REASONS, InputError, prepare_atac
from proformer.io.peaks import merge_intervals, overlaps, read_peaks
from proformer.io.signal import BamInsertions, tn5_insertions
from proformer.data.dataset import Dataset
from proformer.sequence import Layout
from proformer.data.genome_sim import simulate_atac, write_bigwig
from proformer.sequence import N, encode

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
WINDOW, FLANK, CENTER = 100, 500, 20


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


@pytest.fixture(scope="module")
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


def run(inputs, out: Path, **options) -> dict:
    kwargs = {"signal": inputs["signal"], "peaks": inputs["peaks"], "n": 1_000, "progress": False}
    kwargs.update(options)
    return prepare_atac(inputs["fasta"], out, **kwargs)


def windows(part: Path) -> dict[str, np.ndarray]:
    with open(part / "windows.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return {
        "chrom": np.array([r["chrom"] for r in rows]),
        "start": np.array([int(r["start"]) for r in rows]),
        "end": np.array([int(r["end"]) for r in rows]),
        "summit": np.array([int(r["summit"]) for r in rows]),
        "target": np.array([float(r["target"]) for r in rows]),
    }


def both_parts(out: Path) -> dict[str, np.ndarray]:
    """windows.tsv of train then test, with the arrays, concatenated."""
    parts = [windows(out / name) for name in ("train", "test")]
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    merged["codes"] = np.concatenate([np.load(out / name / "codes.npy") for name in ("train", "test")])
    merged["targets"] = np.concatenate([np.load(out / name / "targets.npy") for name in ("train", "test")])
    return merged


# ------------------------------------------------------------------------------------------
# Targets, sequences, windows.
# ------------------------------------------------------------------------------------------


def test_targets_equal_direct_mean_over_central_bases(inputs, tmp_path):
    out = tmp_path / "out"
    meta = run(inputs, out)
    data = both_parts(out)
    assert meta["rows_kept"] == 1_000 and len(data["targets"]) == 1_000
    assert data["targets"].dtype == np.float32 and data["targets"].shape == (1_000, 1)
    bw = pyBigWig.open(str(inputs["signal"]))
    for i in np.random.default_rng(0).choice(1_000, 12, replace=False):
        a = data["start"][i] + (WINDOW - CENTER) // 2
        direct = np.nan_to_num(np.array(bw.values(str(data["chrom"][i]), int(a), int(a) + CENTER), dtype=np.float32)).astype(np.float64).mean()
        assert data["targets"][i, 0] == np.float32(direct)
        assert np.float32(data["target"][i]) == data["targets"][i, 0]  # windows.tsv round-trips float32
    bw.close()


def test_sequences_equal_fasta_slices(inputs, tmp_path):
    out = tmp_path / "out"
    run(inputs, out)
    data = both_parts(out)
    for i in range(0, 1_000, 37):
        text = inputs["sequences"][str(data["chrom"][i])][data["start"][i] : data["end"][i]].upper()
        expected = encode("".join(c if c in "ACGT" else "N" for c in text))
        assert np.array_equal(data["codes"][i], expected)
    # Lower-case and IUPAC stretches were sampled and read as upper case / N.
    assert ((data["chrom"] == "chr1") & (data["summit"] == 3_200)).any()
    near_iupac = (data["chrom"] == "chr1") & (data["start"] <= 8_990) & (data["end"] >= 8_995)
    assert near_iupac.any() and (data["codes"][near_iupac] == N).sum(axis=1).min() == 5


def test_windows_lie_inside_summit_flank_on_both_sides(inputs, tmp_path):
    out = tmp_path / "out"
    run(inputs, out, n=3_000)
    data = both_parts(out)
    assert (data["end"] - data["start"] == WINDOW).all()
    assert (data["start"] >= data["summit"] - FLANK).all() and (data["end"] <= data["summit"] + FLANK).all()
    offset = data["start"] + WINDOW // 2 - data["summit"]
    assert offset.min() >= -450 and offset.max() <= 450
    assert offset.min() < -400 and offset.max() > 400  # both sides are covered
    # The -1 summit offset used the midpoint of [summit - 120, summit + 121).
    assert set(data["summit"][data["chrom"] == "chr1"]) <= {2_000, 3_200, 9_000, 15_200, 11_000}


def test_same_seed_reproduces_and_other_seed_differs(inputs, tmp_path):
    run(inputs, tmp_path / "a", seed=3)
    run(inputs, tmp_path / "b", seed=3)
    run(inputs, tmp_path / "c", seed=4)
    for name in ("codes.npy", "targets.npy"):
        assert np.array_equal(np.load(tmp_path / "a" / "train" / name), np.load(tmp_path / "b" / "train" / name))
    assert (tmp_path / "a" / "test" / "windows.tsv").read_text() == (tmp_path / "b" / "test" / "windows.tsv").read_text()
    assert (tmp_path / "a" / "train" / "windows.tsv").read_text() != (tmp_path / "c" / "train" / "windows.tsv").read_text()


def test_log1p_transform(inputs, tmp_path):
    run(inputs, tmp_path / "none", seed=1)
    meta = run(inputs, tmp_path / "log", seed=1, transform="log1p")
    assert meta["options"]["transform"] == "log1p"
    plain, logged = both_parts(tmp_path / "none"), both_parts(tmp_path / "log")
    assert np.array_equal(plain["start"], logged["start"])
    np.testing.assert_allclose(logged["targets"], np.log1p(plain["targets"].astype(np.float64)), rtol=1e-6)


# ------------------------------------------------------------------------------------------
# Splits.
# ------------------------------------------------------------------------------------------


def test_random_split_partitions_the_windows(inputs, tmp_path):
    out = tmp_path / "out"
    meta = run(inputs, out, split="random:0.75")
    train, test = windows(out / "train"), windows(out / "test")
    assert (len(train["start"]), len(test["start"])) == (750, 250) == (meta["parts"]["train"], meta["parts"]["test"])
    # Same seed and draws without a split: the parts are exactly the drawn windows, each once.
    whole = run(inputs, tmp_path / "whole", split="random:0.5")
    key = lambda w: sorted(zip(w["chrom"], w["start"], w["summit"]))
    assert key({k: np.concatenate([train[k], test[k]]) for k in train}) == key(both_parts(tmp_path / "whole"))
    assert whole["rows_kept"] == 1_000


def test_chrom_split_holds_out_the_named_chromosomes(inputs, tmp_path):
    out = tmp_path / "out"
    run(inputs, out, split="chrom:chr2")
    train, test = windows(out / "train"), windows(out / "test")
    assert set(test["chrom"]) == {"chr2"} and "chr2" not in set(train["chrom"])
    with pytest.raises(ValueError, match="chr9 not in the FASTA"):
        run(inputs, tmp_path / "bad", split="chrom:chr9")


# ------------------------------------------------------------------------------------------
# Filters: each reason.
# ------------------------------------------------------------------------------------------


def test_every_drop_reason_is_counted_and_enforced(inputs, tmp_path):
    out = tmp_path / "out"
    meta = run(inputs, out, n=3_000, blacklist=inputs["blacklist"], missing="skip")
    dropped = meta["dropped"]
    assert set(dropped) == set(REASONS) and all(dropped[reason] > 0 for reason in REASONS), dropped
    assert meta["rows_kept"] == 3_000
    assert meta["rows_read"] == meta["rows_kept"] + sum(dropped.values())
    data = both_parts(out)
    chrom, start, end = data["chrom"], data["start"], data["end"]
    lengths = np.array([LENGTHS[c] for c in chrom])
    assert (start >= 0).all() and (end <= lengths).all()  # off_chromosome
    name, b0, b1 = BLACKLISTED
    assert not ((chrom == name) & (start < b1) & (end > b0)).any()  # blacklist
    assert ((data["codes"] == N).mean(axis=1) <= 0.1).all()  # too_many_n
    name, g0, g1 = GAP
    centre = start + (WINDOW - CENTER) // 2
    assert not ((chrom == name) & (centre < g1) & (centre + CENTER > g0)).any()  # missing_signal
    # The small chromosome's windows near its ends were partly kept, partly dropped.
    assert (chrom == "chr3").any()


def test_missing_zero_counts_no_data_as_zero(inputs, tmp_path):
    out = tmp_path / "out"
    meta = run(inputs, out, n=3_000)
    assert meta["dropped"]["missing_signal"] == 0
    data = both_parts(out)
    name, g0, g1 = GAP
    centre = data["start"] + (WINDOW - CENTER) // 2
    inside = (data["chrom"] == name) & (centre >= g0) & (centre + CENTER <= g1)
    assert inside.any() and (data["targets"][inside] == 0).all()


def test_too_few_windows_says_how_many_could_be_kept(inputs, tmp_path):
    peaks = tmp_path / "one.bed"
    peaks.write_text("chr1\t11000\t11001\n")
    blacklist = tmp_path / "wide.bed"
    blacklist.write_text("chr1\t10450\t11550\n")  # every window of the summit overlaps it
    with pytest.raises(InputError, match=r"only 0 of .* passed the filters .*blacklist"):
        run(inputs, tmp_path / "out", peaks=peaks, blacklist=blacklist)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------
# Peaks, blacklist and errors.
# ------------------------------------------------------------------------------------------


def test_peak_formats_and_summit_rules(inputs):
    narrow = read_peaks(inputs["peaks"])
    assert narrow.format == "narrowpeak"
    assert [narrow.names[c] for c in narrow.chrom] == [c for c, _ in SUMMITS]
    assert narrow.summit.tolist() == [s for _, s in SUMMITS]
    assert narrow.line.tolist() == list(range(2, 12))  # line 1 is the track line
    bed = read_peaks(inputs["bed"])  # gzip, 1-bp records and a 20-bp interval
    assert bed.format == "bed" and bed.summit.tolist() == [s for _, s in SUMMITS]


def test_bed_summits_prepare_like_narrowpeak(inputs, tmp_path):
    run(inputs, tmp_path / "np", seed=2)
    meta = run(inputs, tmp_path / "bed", seed=2, peaks=inputs["bed"])
    assert meta["sources"]["peaks"]["format"] == "bed"
    assert np.array_equal(both_parts(tmp_path / "np")["codes"], both_parts(tmp_path / "bed")["codes"])


@pytest.mark.parametrize(
    "line, message",
    [
        ("chr1\tabc\t2100\tp\t1\t.\t1\t-1\t-1\t50\n", r"peaks.narrowPeak:3: start \(column 2\) is not an integer: 'abc'"),
        ("chr1\t2000\t2100\tp\t1\t.\t1\t-1\t-1\t100\n", r"peaks.narrowPeak:3: summit offset \(column 10\) 100 is outside the peak \[2000, 2100\)"),
        ("chr1\t2000\t2100\tp\t1\n", r"peaks.narrowPeak:3: a narrowPeak line has 10 columns, this one has 5"),
        ("chr1\t2100\t2000\tp\t1\t.\t1\t-1\t-1\t5\n", r"peaks.narrowPeak:3: need 0 <= start <= end"),
    ],
)
def test_bad_narrowpeak_line_names_file_and_line(tmp_path, line, message):
    good = "chr1\t1000\t1200\tp\t1\t.\t1\t-1\t-1\t100\n"
    path = tmp_path / "peaks.narrowPeak"
    path.write_text("# header\n" + good + line)
    with pytest.raises(InputError, match=message):
        read_peaks(path)


def test_chromosome_name_mismatch_lists_examples(inputs, tmp_path):
    peaks = tmp_path / "renamed.narrowPeak"
    peaks.write_text(_narrowpeak_lines(SUMMITS, names={"chr1": "1", "chr2": "2", "chr3": "3"}))
    with pytest.raises(InputError) as error:
        run(inputs, tmp_path / "out", peaks=peaks)
    message = str(error.value)
    assert "not in the FASTA" in message and "1, 2, 3" in message and "chr1, chr2, chr3" in message
    assert "'chr' prefix" in message

    bw_path = tmp_path / "other.bw"
    write_bigwig(bw_path, {"chrX": np.ones(1_000)})
    with pytest.raises(InputError, match=r"not in the signal .*other.bw: chr1, chr2, chr3.*chrX"):
        run(inputs, tmp_path / "out", signal=bw_path)

    lengths = tmp_path / "lengths.bw"
    write_bigwig(lengths, {name: np.ones(length + 10) for name, length in LENGTHS.items()})
    with pytest.raises(InputError, match="different genome builds"):
        run(inputs, tmp_path / "out", signal=lengths)

    blacklist = tmp_path / "bl.bed"
    blacklist.write_text("1\t0\t100\n")
    with pytest.raises(InputError, match="chromosomes of the blacklist are not in the FASTA"):
        run(inputs, tmp_path / "out", blacklist=blacklist)


def test_options_are_checked(inputs, tmp_path):
    with pytest.raises(ValueError, match="exactly one source"):
        run(inputs, tmp_path / "o", bam=inputs["signal"])
    with pytest.raises(ValueError, match="does not fit"):
        run(inputs, tmp_path / "o", flank=40)
    with pytest.raises(ValueError, match="transform"):
        run(inputs, tmp_path / "o", transform="sqrt")
    with pytest.raises(ValueError, match="random:F"):
        run(inputs, tmp_path / "o", split="hash:0.8")


def test_blacklist_merge_and_overlap():
    starts, ends = merge_intervals(np.array([[50, 60], [10, 20], [15, 30], [30, 35], [40, 41]]))
    assert starts.tolist() == [10, 40, 50] and ends.tolist() == [35, 41, 60]
    start = np.array([0, 0, 35, 35, 41, 60, 59, 100])
    end = np.array([10, 11, 40, 41, 50, 70, 60, 200])
    assert overlaps((starts, ends), start, end).tolist() == [False, True, False, True, False, False, True, False]


# ------------------------------------------------------------------------------------------
# BAM: Tn5 insertions.
# ------------------------------------------------------------------------------------------


def _write_bam(path: Path, reads: list[tuple[str, int, int, int]]) -> None:
    """reads: (chrom, reference_start, length, flag); written sorted and indexed."""
    names = list(LENGTHS)
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": n, "LN": LENGTHS[n]} for n in names]}
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


def test_tn5_shift_on_hand_made_reads(tmp_path):
    reads = [
        ("chr1", 100, 30, 0),  # + strand: insertion 100 + 4 = 104
        ("chr1", 200, 30, 16),  # - strand: reference_end 230, insertion 230 - 1 - 5 = 224
        ("chr1", 300, 36, 16 | 1 | 2 | 64),  # paired, first mate, - strand: 336 - 6 = 330
        ("chr1", 400, 30, 256),  # secondary: skipped
        ("chr1", 410, 30, 1024),  # duplicate: skipped
        ("chr1", 420, 30, 512),  # QC fail: skipped
        ("chr1", 430, 30, 2048),  # supplementary: skipped
        ("chr1", 440, 30, 4),  # unmapped (placed): skipped
        ("chr1", 0, 30, 16),  # - strand at the chromosome start: insertion 24
        ("chr1", 19_990, 10, 0),  # + strand: insertion 19,994
    ]
    path = tmp_path / "reads.bam"
    _write_bam(path, reads)
    source = BamInsertions(path, str(path))
    counts = source.chromosome("chr1", LENGTHS["chr1"])
    source.close()
    assert np.flatnonzero(counts).tolist() == [24, 104, 224, 330, 19_994]
    assert counts.dtype == np.float32 and counts.sum() == 5
    assert tn5_insertions(np.array([100, 200]), np.array([130, 230]), np.array([False, True])).tolist() == [104, 224]


def test_bam_targets_are_insertion_means(inputs, tmp_path):
    rng = np.random.default_rng(5)
    reads = []
    for chrom, summit in SUMMITS[:3] + SUMMITS[5:6]:
        starts = rng.integers(summit - 600, summit + 600, 400)
        flags = np.where(rng.random(400) < 0.5, 16, 0)
        flags[:20] |= 1024  # duplicates must not count
        reads += [(chrom, int(s), 36, int(f)) for s, f in zip(starts, flags)]
    path = tmp_path / "reads.bam"
    _write_bam(path, reads)
    peaks = tmp_path / "peaks.bed"
    peaks.write_text("".join(f"{c}\t{s}\t{s + 1}\n" for c, s in SUMMITS[:3] + SUMMITS[5:6]))
    out = tmp_path / "out"
    meta = prepare_atac(inputs["fasta"], out, bam=path, peaks=peaks, n=500, progress=False)
    assert "bam" in meta["sources"] and meta["bam_reads"]["skipped_by_flag"] == 4 * 20
    data = both_parts(out)
    expected_positions = {}
    for chrom, start, length, flag in reads:
        if flag & 1024:
            continue
        position = start + length - 6 if flag & 16 else start + 4
        expected_positions.setdefault(chrom, []).append(position)
    counts = {c: np.bincount(p, minlength=LENGTHS[c]) for c, p in expected_positions.items()}
    a = data["start"] + (WINDOW - CENTER) // 2
    expected = np.array([counts[c][s : s + CENTER].mean() for c, s in zip(data["chrom"], a)], dtype=np.float32)
    assert np.array_equal(data["targets"][:, 0], expected)
    assert expected.max() > 0


# ------------------------------------------------------------------------------------------
# Output format.
# ------------------------------------------------------------------------------------------


def test_output_is_a_dataset_directory(inputs, tmp_path):
    out = tmp_path / "out"
    summary = run(inputs, out, blacklist=inputs["blacklist"])
    for part, size in (("train", 800), ("test", 200)):
        dataset = Dataset(out / part)
        assert len(dataset) == size and dataset.n_targets == 1
        assert dataset.layout() == Layout(0, 0, WINDOW)
        assert dataset.codes.dtype == np.uint8 and dataset.codes.shape == (size, WINDOW)
        assert np.load(out / part / "lengths.npy").dtype == np.int32
        assert np.load(out / part / "integer_target.npy").dtype == bool
        meta = dataset.meta
        for key in ("format_version", "source", "rows_read", "rows_kept", "dropped", "target_names", "target_mean",
                    "target_std", "min_length", "max_length", "transforms", "proformer_version", "created"):
            assert key in meta, key
        assert meta["transforms"] == {"head": 0, "tail": 0, "length": WINDOW}
        targets = np.load(out / part / "targets.npy").astype(np.float64)
        assert meta["target_mean"] == [pytest.approx(targets.mean())]
        assert (out / part / "windows.tsv").read_text().splitlines()[0] == "chrom\tstart\tend\tsummit\ttarget"
    top = json.loads((out / "meta.json").read_text())
    assert top == json.loads(json.dumps(summary))
    assert len(top["sources"]["peaks"]["sha256"]) == 64 and len(top["sources"]["blacklist"]["sha256"]) == 64
    assert {"size", "mtime"} <= set(top["sources"]["fasta"]) and {"size", "mtime"} <= set(top["sources"]["signal"])
    # Writing again replaces the output; nothing temporary is left behind.
    run(inputs, out, n=500)
    assert len(Dataset(out / "train")) == 400
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "test", "train"]


def test_simulated_genome_prepares_and_signal_follows_motifs(tmp_path):
    paths = simulate_atac(tmp_path / "sim", chromosomes=2, chrom_length=60_000, n_peaks=40, bam=True, n_reads=5_000)
    assert paths["n_peaks"] == 40 and all(Path(paths[k]).exists() for k in ("fasta", "signal", "peaks", "sites", "bam"))
    out = tmp_path / "out"
    prepare_atac(paths["fasta"], out, signal=paths["signal"], peaks=paths["peaks"], n=2_000, progress=False)
    data = both_parts(out)
    # Windows whose central 20 bp hold a motif site are far more accessible than the rest.
    sites = np.loadtxt(paths["sites"], dtype=str, ndmin=2)
    centre = {}
    for chrom, start, end, _ in sites:
        centre.setdefault(chrom, []).append((int(start) + int(end)) // 2)
    a = data["start"] + (WINDOW - CENTER) // 2
    has_site = np.array([any(s <= c < s + CENTER for c in centre.get(ch, [])) for ch, s in zip(data["chrom"], a)])
    assert has_site.any() and (~has_site).any()
    assert data["targets"][has_site].mean() > 3 * data["targets"][~has_site].mean()
    bam_out = tmp_path / "bam_out"
    prepare_atac(paths["fasta"], bam_out, bam=paths["bam"], peaks=paths["peaks"], n=500, progress=False)
    assert np.load(bam_out / "train" / "targets.npy").max() > 0


def test_a_read_only_output_folder_is_one_line(inputs, read_only_dir, capsys):
    """atac prepare into a read-only folder: a non-zero exit and one line naming the path."""
    from proformer.cli import main

    status = main(["atac", "prepare", "--fasta", str(inputs["fasta"]), "--signal", str(inputs["signal"]),
                   "--peaks", str(inputs["peaks"]), "--out", str(read_only_dir / "atac"), "--n", "200", "--no-progress"])
    err = capsys.readouterr().err
    assert status != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(read_only_dir) in err and "Read-only file system" in err, err


@pytest.mark.parametrize("which", ["fasta", "signal", "peaks", "blacklist"])
def test_an_unreadable_input_is_one_line(inputs, tmp_path, unreadable, capsys, which):
    """atac prepare with an input it may not read: exit non-zero, one line naming that file."""
    from proformer.cli import main

    unreadable(inputs[which])
    status = main(["atac", "prepare", "--fasta", str(inputs["fasta"]), "--signal", str(inputs["signal"]),
                   "--peaks", str(inputs["peaks"]), "--blacklist", str(inputs["blacklist"]),
                   "--out", str(tmp_path / "atac"), "--n", "200", "--no-progress"])
    err = capsys.readouterr().err
    assert status != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(inputs[which]) in err and "Permission denied" in err, err
    assert not (tmp_path / "atac").exists()
