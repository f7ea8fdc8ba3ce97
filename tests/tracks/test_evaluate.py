"""evaluate along a genome (proformer.tracks.evaluate): measured targets made as atac prepare makes them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import TRACK_TARGET as TARGET
from helpers import TRACK_WINDOW as WINDOW
from helpers import cli, one_line, write_atac_run

import proformer
from proformer.evaluate import regression_metrics
from proformer.tracks import evaluate_genome
from proformer.tracks.windows import Placement, Region, tile


def by_hand(genome, chrom, stride, transform=np.asarray):
    """Window starts, predictions and measured targets of a chromosome tiled at ``stride``, each
    computed directly: predict on the cut sequence; the signal's mean over the target bases."""
    placement = Placement(WINDOW, TARGET)
    starts = np.concatenate([s for s, _, _ in tile(Region(chrom, 0, len(genome["text"][chrom]), chrom),
                                                   len(genome["text"][chrom]), placement, stride)])
    sequences = [genome["text"][chrom][s : s + WINDOW] for s in starts]
    keep = np.array([s.count("N") <= 0.1 * WINDOW for s in sequences])
    values = genome["values"][chrom]
    measured = np.array([np.nan_to_num(values[s + TARGET[0] : s + TARGET[1]]).mean() for s in starts[keep]])
    predicted = proformer.load(genome["run"], "cpu").predict([s for s, k in zip(sequences, keep) if k])
    return predicted, transform(measured).astype(np.float32).astype(np.float64), int((~keep).sum())


def test_a_tiled_chromosome_is_compared_with_the_signal_over_each_window_target(genome):
    result = evaluate_genome(genome["run"], genome["fasta"], genome["signal"], regions=["chr1", "chr2"], stride=10,
                             progress=False, device="cpu")
    rows = {m.chromosome: m for m in result.chromosomes}
    assert list(rows) == ["all", "chr1", "chr2"]
    predicted, measured, skipped = zip(*(by_hand(genome, chrom, 10) for chrom in ("chr1", "chr2")))
    assert result.skipped == {"off_chromosome": 0, "too_many_n": sum(skipped)} and sum(skipped) > 0
    for chrom, p, m in zip(("chr1", "chr2"), predicted, measured):
        expected = regression_metrics(p, m)
        assert rows[chrom].n == len(m)
        assert rows[chrom].pearson == pytest.approx(expected["pearson"], abs=1e-6)
        assert rows[chrom].mse == pytest.approx(expected["mse"], rel=1e-5)
    assert rows["all"].n == rows["chr1"].n + rows["chr2"].n
    everything = regression_metrics(np.concatenate(predicted), np.concatenate(measured))
    assert rows["all"].spearman == pytest.approx(everything["spearman"], abs=1e-6)


def test_a_log1p_run_is_compared_with_the_log1p_of_the_signal(genome, tmp_path):
    run = write_atac_run(tmp_path / "log", transform="log1p")
    result = evaluate_genome(run, genome["fasta"], genome["signal"], regions=["chr1"], stride=20, progress=False,
                             device="cpu")
    predicted, measured, _ = by_hand({**genome, "run": run}, "chr1", 20, transform=np.log1p)
    assert result.chromosomes[0].r2 == pytest.approx(regression_metrics(predicted, measured)["r2"], rel=1e-6)


def test_the_command_writes_metrics_and_a_scatter_and_prints_json(genome, tmp_path, capsys):
    assert cli("evaluate", "--model", genome["run"], "--fasta", genome["fasta"], "--signal", genome["signal"],
               "--chrom", "chr2", "--out-dir", tmp_path / "eval", "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["chromosomes"]) == {"all", "chr2"} and printed["target"] == "atac_signal"
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == printed
    assert (tmp_path / "eval" / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, words", [
    (["--chrom", "chr1"], ["--signal"]),
    (["--signal", "s.bw", "--bed", "r.bed", "--region", "chr1"], ["--bed", "--region"]),
])
def test_bad_genome_options_are_one_line(genome, capsys, argv, words):
    assert cli("evaluate", "--model", genome["run"], "--fasta", genome["fasta"], *argv) == 2
    message = one_line(capsys)
    assert all(word in message for word in words), message


def test_a_run_of_several_targets_needs_target(genome, tmp_path, capsys):
    run = write_atac_run(tmp_path / "two", n_targets=2)
    assert cli("evaluate", "--model", run, "--fasta", genome["fasta"], "--signal", genome["signal"]) == 2
    assert "--target" in one_line(capsys)
    assert cli("evaluate", "--model", run, "--fasta", genome["fasta"], "--signal", genome["signal"], "--chrom", "chr1",
               "--target", "track1") == 0


def test_a_signal_without_an_evaluated_chromosome_is_one_line(genome, tmp_path, capsys):
    from proformer.data.genome_sim import write_bigwig

    write_bigwig(tmp_path / "other.bw", {"chr1": np.ones(1_037), "chr2": np.ones(400)})
    assert cli("evaluate", "--model", genome["run"], "--fasta", genome["fasta"], "--signal", tmp_path / "other.bw",
               "--chrom", "chr2") == 2
    message = one_line(capsys)
    assert all(word in message for word in ["other.bw", "chr2 with 400", "433", "genome.fa"]), message
    assert cli("evaluate", "--model", genome["run"], "--fasta", genome["fasta"], "--signal", tmp_path / "other.bw",
               "--chrom", "chrM") == 2
    assert "has no 'chrM'" in one_line(capsys)
