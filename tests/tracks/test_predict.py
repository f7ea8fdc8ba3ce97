"""predict along a genome (proformer.tracks.predict): every value is predict on its window cut by hand."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from helpers import TRACK_LENGTHS as LENGTHS
from helpers import TRACK_N_RUN as N_RUN
from helpers import TRACK_TARGET as TARGET
from helpers import TRACK_WINDOW as WINDOW
from helpers import beside_processes, cli, cli_script, one_line, rc, write_atac_run

import proformer
from proformer.cli import main
from proformer.io.errors import InputError
from proformer.tracks import predict_intervals, predict_track


def bigwig_entries(path, chrom):
    import pyBigWig

    with pyBigWig.open(str(path)) as bw:
        return bw.chroms(), bw.intervals(chrom) or ()


def by_hand(genome, chrom, window_starts):
    """predict on each window's sequence, cut from the FASTA text by hand."""
    sequences = [genome["text"][chrom][s : s + WINDOW] for s in window_starts]
    return proformer.load(genome["run"], "cpu").predict(sequences)


@pytest.mark.parametrize("stride", [1, 20, 100])
def test_every_value_of_the_track_is_predict_on_its_window(genome, tmp_path, stride):
    out = tmp_path / "track.bw"
    result = predict_track(genome["run"], genome["fasta"], out, regions=["chr1"], stride=stride, progress=False, device="cpu")
    sizes, entries = bigwig_entries(out, "chr1")
    assert sizes == LENGTHS  # every chromosome of the FASTA, with its length
    begins = np.array([begin for begin, _, _ in entries])
    width = min(stride, TARGET[1] - TARGET[0])
    offset = TARGET[0] + (TARGET[1] - TARGET[0] - width) // 2
    starts = begins - offset
    assert result["windows"] == len(entries) and len(entries) > 5
    # both ends: the first window is the first on the grid that starts at or after 0, the last
    # the last that ends at or before the chromosome's end
    grid = np.arange(0, LENGTHS["chr1"], stride) - offset
    inside = grid[(grid >= 0) & (grid + WINDOW <= LENGTHS["chr1"])]
    assert starts.tolist() == inside.tolist()
    assert all(end - begin == width for begin, end, _ in entries)
    values = np.array([value for _, _, value in entries])
    np.testing.assert_allclose(values, by_hand(genome, "chr1", starts).astype(np.float32), rtol=2e-6)


def test_a_bedgraph_holds_the_values_of_the_bigwig(genome, tmp_path):
    options = dict(regions=["chr1:101-400"], stride=7, progress=False, device="cpu")
    predict_track(genome["run"], genome["fasta"], tmp_path / "t.bw", **options)
    predict_track(genome["run"], genome["fasta"], tmp_path / "t.bedGraph", **options)
    lines = [line.split("\t") for line in (tmp_path / "t.bedGraph").read_text().splitlines()]
    _, entries = bigwig_entries(tmp_path / "t.bw", "chr1")
    assert [(int(b), int(e)) for _, b, e, _ in lines] == [(b, e) for b, e, _ in entries]
    assert lines[0][1] == "100" and all(int(e) <= 400 for _, _, e, _ in lines)  # 1-based 101..400 = [100, 400)
    assert np.array([float(v) for *_, v in lines], dtype=np.float32).tolist() == [v for _, _, v in entries]


def test_windows_with_too_many_n_get_no_value_and_are_counted(genome, tmp_path, capsys):
    out = tmp_path / "chr2.bedGraph"
    result = predict_track(genome["run"], genome["fasta"], out, regions=["chr2"], stride=1, progress=False, device="cpu")
    starts = np.array([int(line.split("\t")[1]) for line in out.read_text().splitlines()]) - (TARGET[0] + 4)
    n_share = np.array([genome["text"]["chr2"][s : s + WINDOW].count("N") / WINDOW for s in starts])
    assert (n_share <= 0.1).all()
    chrom, begin, end = N_RUN
    expected_skipped = sum(1 for s in range(0, LENGTHS[chrom] - WINDOW + 1)
                           if genome["text"][chrom][s : s + WINDOW].count("N") > 0.1 * WINDOW)
    assert result["skipped"]["too_many_n"] == expected_skipped > 0
    assert "not predicted" in capsys.readouterr().err


def test_minus_strand_intervals_are_predict_on_the_reverse_complement(genome, tmp_path):
    text = genome["text"]["chr1"]
    bed = tmp_path / "regions.bed"
    bed.write_text("chr1\t100\t140\tplus\t0\t+\n"
                   "chr1\t100\t140\tminus\t0\t-\n"
                   "chr1\t300\t301\n"  # a summit record: no name, no strand
                   "chr1\t600\t700\tlong\t0\t-\n"  # 100 bp: 3 windows 30 apart at stride 30
                   "chr1\t5\t15\tedge\t0\t+\n"  # its window would start at -10: skipped, not shifted
                   "chr2\t210\t250\tnrun\t0\t+\n")  # inside the N run
    out = tmp_path / "out.tsv"
    result = predict_intervals(genome["run"], genome["fasta"], bed, out, stride=30, progress=False, device="cpu")
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert rows[0] == ["id", "chrom", "start", "end", "strand", "windows", "atac_signal", "atac_signal_windows"]
    by_id = {row[0]: row for row in rows[1:]}
    assert list(by_id) == ["plus", "minus", "chr1:300-301", "long"]
    run = proformer.load(genome["run"], "cpu")
    assert float(by_id["plus"][6]) == pytest.approx(run.predict(text[100:140])[0], rel=1e-5)
    assert float(by_id["minus"][6]) == pytest.approx(run.predict(rc(text[100:140]))[0], rel=1e-5)
    assert float(by_id["chr1:300-301"][6]) == pytest.approx(run.predict(text[280:320])[0], rel=1e-5)
    each = run.predict([rc(text[s : s + WINDOW]) for s in (600, 630, 660)])  # group of 100 bp centred on 650
    assert by_id["long"][5] == "3"
    np.testing.assert_allclose([float(v) for v in by_id["long"][7].split(",")], each, rtol=1e-5)
    assert float(by_id["long"][6]) == pytest.approx(each.mean(), rel=1e-5)
    assert [by_id[name][4] for name in by_id] == ["+", "-", ".", "-"]  # the strand as the BED gives it
    assert result["skipped"] == {"off_chromosome": 1, "too_many_n": 1} and result["intervals"] == 4


def test_two_processes_write_the_track_of_one(genome, tmp_path, monkeypatch):
    """`--devices 2`: each process predicts its share of every block, rank 0 writes: the bytes of
    one process. Blocks of 100 windows and batches of 16 split each block unevenly."""
    import proformer.tracks.windows as windows

    script = cli_script(tmp_path, setup="import proformer.tracks.windows as w\nw.BLOCK = 100\n")

    def command(out, devices):
        return ["predict", "--model", genome["run"], "--fasta", genome["fasta"], "--stride", "3", "--batch-size", "16",
                "--out", tmp_path / out, "--no-progress", "--devices", str(devices)]

    def one_process():
        monkeypatch.setattr(windows, "BLOCK", 100)
        assert main([str(arg) for arg in command("one.bedGraph", 1)]) == 0

    status, stdout, stderr = beside_processes(script, {"two": command("two.bedGraph", 2)}, one_process)["two"]
    assert status == 0, stderr[-3000:]
    assert stdout.count("wrote") == 1
    assert (tmp_path / "two.bedGraph").read_bytes() == (tmp_path / "one.bedGraph").read_bytes()
    assert len((tmp_path / "one.bedGraph").read_text().splitlines()) > 300  # several blocks


def test_a_failed_track_leaves_the_existing_file_untouched(genome, tmp_path):
    out = tmp_path / "t.bw"
    out.write_bytes(b"precious")
    with pytest.raises(ValueError, match="no window"):  # chrM is shorter than a window
        predict_track(genome["run"], genome["fasta"], out, regions=["chrM"], progress=False, device="cpu")
    assert out.read_bytes() == b"precious" and sorted(p.name for p in tmp_path.iterdir()) == ["t.bw"]


@pytest.mark.parametrize("case, words", [
    ("missing chromosome", ["regions.bed:2", "chr9", "genome.fa"]),
    ("end <= start", ["regions.bed:2", "end (100) <= start (100)"]),
    ("region outside", ["chr1:1-5,000", "outside", "1,037"]),
    ("gzip fasta", ["gzip", "bgzip"]),
    ("two targets", ["--target", "track0", "track1"]),
    ("suffix", [".bw", ".bedGraph"]),
])
def test_bad_input_is_one_line_naming_the_file_line_or_region(genome, tmp_path, capsys, case, words):
    fasta, model, extra = genome["fasta"], genome["run"], ["--out", tmp_path / "t.bw"]
    bed = tmp_path / "regions.bed"
    if case == "missing chromosome":
        bed.write_text("chr1\t100\t140\nchr9\t100\t140\n")
        extra = ["--bed", bed, "--out", tmp_path / "o.tsv"]
    elif case == "end <= start":
        bed.write_text("chr1\t100\t140\nchr1\t100\t100\n")
        extra = ["--bed", bed, "--out", tmp_path / "o.tsv"]
    elif case == "region outside":
        extra += ["--region", "chr1:1-5,000"]
    elif case == "gzip fasta":
        fasta = tmp_path / "genome.fa.gz"
        fasta.write_bytes(gzip.compress(genome["fasta"].read_bytes()))
    elif case == "two targets":
        model = write_atac_run(tmp_path / "two", n_targets=2)
    else:
        extra = ["--out", tmp_path / "t.txt"]
    assert cli("predict", "--model", model, "--fasta", fasta, *extra) == 2
    message = one_line(capsys)
    assert all(word in message for word in words), message
    assert not (tmp_path / "t.bw").exists() and not (tmp_path / "o.tsv").exists()


@pytest.mark.parametrize("argv, words", [
    (["--input", "x.txt", "--bed", "r.bed"], ["--bed", "--fasta"]),
    (["--fasta", "g.fa", "--input", "x.txt"], ["--input or --fasta"]),
    (["--fasta", "g.fa", "--bed", "r.bed", "--chrom", "chr1"], ["--bed", "--region"]),
    ([], ["--input", "--fasta"]),
])
def test_the_genome_options_do_not_mix_with_a_sequence_input(tmp_path, capsys, argv, words):
    run = write_atac_run(tmp_path / "run")
    assert cli("predict", "--model", run, "--out", tmp_path / "o.tsv", *argv) == 2
    message = one_line(capsys)
    assert all(word in message for word in words), message
