"""Tests of :mod:`proformer.data.atac`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    BLACKLISTED,
    GAP,
    LENGTHS,
    SUMMITS,
    _write_bam,
    run,
)

from proformer.cli import main
from proformer.data.atac import REASONS, InputError, prepare_atac
from proformer.data.dataset import Dataset
from proformer.data.genome_sim import simulate_atac
from proformer.sequence import Layout, N, encode

pyBigWig = pytest.importorskip("pyBigWig")
pysam = pytest.importorskip("pysam")
pytest.importorskip("pyfaidx")


WINDOW, FLANK, CENTER = 100, 500, 20


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


def test_bed_summits_prepare_like_narrowpeak(inputs, tmp_path):
    run(inputs, tmp_path / "np", seed=2)
    meta = run(inputs, tmp_path / "bed", seed=2, peaks=inputs["bed"])
    assert meta["sources"]["peaks"]["format"] == "bed"
    assert np.array_equal(both_parts(tmp_path / "np")["codes"], both_parts(tmp_path / "bed")["codes"])


def test_options_are_checked(inputs, tmp_path):
    with pytest.raises(ValueError, match="exactly one source"):
        run(inputs, tmp_path / "o", bam=inputs["signal"])
    with pytest.raises(ValueError, match="does not fit"):
        run(inputs, tmp_path / "o", flank=40)
    with pytest.raises(ValueError, match="transform"):
        run(inputs, tmp_path / "o", transform="sqrt")
    with pytest.raises(ValueError, match="random:F"):
        run(inputs, tmp_path / "o", split="hash:0.8")


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


def test_atac_prepare_then_train_through_the_cli(tmp_path, capsys, one_thread):
    pytest.importorskip("pyBigWig")
    from proformer.data.genome_sim import simulate_atac

    simulate_atac(tmp_path / "sim", chromosomes=2, chrom_length=200_000, seed=1)
    sim = tmp_path / "sim"
    assert main(["atac", "prepare", "--fasta", str(sim / "genome.fa"), "--signal", str(sim / "signal.bw"),
                 "--peaks", str(sim / "peaks.narrowPeak"), "--out", str(tmp_path / "atac"), "--n", "600",
                 "--no-progress"]) == 0
    assert "600 windows" in capsys.readouterr().out
    assert main(["train", "--preset", "atac", "--data", str(tmp_path / "atac" / "train"), "--out", str(tmp_path / "run"),
                 "--set", f"data.valid={tmp_path / 'atac' / 'test'}", "--set", "dim=8", "--set", "epochs=1",
                 "--set", "batch_size=120", "--no-progress"]) == 0
    assert "480 training / 120 validation rows" in capsys.readouterr().out
    # the run knows where its windows sit on the genome: predict --fasta places them with this
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["atac"] == {"window": 100, "target_span": [40, 60], "transform": "none"}
    # the test windows evaluated from the dataset and from the genome: the same numbers
    assert main(["evaluate", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "atac" / "test"), "--json",
                 "--no-progress"]) == 0
    from_data = json.loads(capsys.readouterr().out)["targets"]["atac_signal"]
    assert main(["evaluate", "--model", str(tmp_path / "run"), "--fasta", str(sim / "genome.fa"), "--signal",
                 str(sim / "signal.bw"), "--bed", str(tmp_path / "atac" / "test" / "windows.tsv"), "--json",
                 "--no-progress"]) == 0
    from_genome = json.loads(capsys.readouterr().out)["chromosomes"]["all"]
    assert from_genome["n"] == from_data["n"] == 120
    assert from_genome["pearson"] == pytest.approx(from_data["pearson"], abs=1e-9)
    assert from_genome["spearman"] == pytest.approx(from_data["spearman"], abs=1e-9)
