"""Tests of :mod:`proformer.interpret.variants`."""

from __future__ import annotations

import csv
import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    SEQUENCES_UNITS,
    TINY_RUN_HEAD,
    Z_UNITS,
    beside_processes,
    cli,
    cli_script,
    mutant,
    planted_motif_model,
    random_dna,
    read_table_units,
    tiny_run_info,
    write_tiny_run,
)

import proformer
from proformer.cli import main
from proformer.inference import Run
from proformer.interpret.ism import substitution_predictions
from proformer.interpret.scorer import Scorer
from proformer.interpret.variants import (
    SKIP_REASONS,
    pair_effects,
    plan_vcf,
    run_variant_effect,
    snv_effects,
    vcf_windows,
    write_effects,
)
from proformer.io.errors import InputError
from proformer.io.genome import Genome
from proformer.io.pairs import read_pairs
from proformer.io.run import RunInfo, TargetInfo, write_run_model
from proformer.io.vcf import read_vcf
from proformer.model import ModelConfig, Proformer
from proformer.sequence import Layout

PAIR_HEADER = "id\tref_sequence\talt_sequence\n"


#: Planted-model sequences: 2 nt head flank + 20 seen + 1 nt tail flank (tiny_run_info's layout).
NO_GATA = "TT" + "C" * 20 + "T"


WITH_GATA = "TT" + "C" * 8 + "GATA" + "C" * 8 + "T"


def _read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        return list(reader.fieldnames), list(reader)


@pytest.fixture
def planted() -> Run:
    """The planted model: with ``standardized=True`` a prediction is the count of GATA matches
    itself (training units: ``2 * count + 1``, tiny_run_info's statistics)."""
    return Run(planted_motif_model(), tiny_run_info())


@pytest.fixture
def tiny_run(tmp_path: Path) -> Path:
    return write_tiny_run(tmp_path / "run")


WIDTH = 20  # the genomic run's input: head 0 + length 20 + tail 0


@pytest.fixture
def genomic_run(tmp_path: Path) -> Path:
    """A random tiny Proformer whose layout trims nothing, as an ATAC run's."""
    info = dataclasses.replace(tiny_run_info(), layout=Layout(head=0, tail=0, length=WIDTH))
    torch.manual_seed(5)
    path = tmp_path / "genomic_run"
    path.mkdir()
    write_run_model(path, Proformer(info.model).state_dict(), info)
    return path


def test_variant_effects_default_to_training_units(case, tmp_path):
    model, t = case.load(), case.target
    target = case.names[t] if len(case.names) > 1 else None
    refs = SEQUENCES_UNITS
    alts = [mutant(s, TINY_RUN_HEAD + 3 + i, "G" if s[TINY_RUN_HEAD + 3 + i] != "G" else "T") for i, s in enumerate(refs)]
    ids = [f"v{i}" for i in range(len(refs))]
    raw_ref, raw_alt = case.raw(refs)[:, t], case.raw(alts)[:, t]
    default = proformer.variant_effect(model, ref=refs, alt=alts, ids=ids, target=target)
    z = proformer.variant_effect(model, ref=refs, alt=alts, ids=ids, target=target, standardized=True)
    assert (default.standardized, default.units, z.standardized, z.units) == (False, "training units", True, Z_UNITS)
    std, mean = case.std[t], case.mean[t]
    # Other batches than case.raw's: equal to float32 rounding (the units differ by far more).
    np.testing.assert_allclose(z["ref_prediction"], raw_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(z["alt_prediction"], raw_alt, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(z["effect"], raw_alt - raw_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(default["ref_prediction"], raw_ref * std + mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(default["alt_prediction"], raw_alt * std + mean, rtol=1e-6, atol=1e-6)
    # The same batches in either unit: exactly y * std + mean.
    np.testing.assert_allclose(default["ref_prediction"], z["ref_prediction"] * std + mean, rtol=1e-12)
    np.testing.assert_allclose(default["alt_prediction"], z["alt_prediction"] * std + mean, rtol=1e-12)
    np.testing.assert_allclose(default["effect"], z["effect"] * std, rtol=1e-9, atol=1e-12)
    # proformer variant-effect --pairs writes the same numbers (9 significant digits).
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("id\tref_sequence\talt_sequence\n" + "".join(f"{i}\t{r}\t{a}\n" for i, r, a in zip(ids, refs, alts)))
    for flag, effects in (([], default), (["--standardized"], z)):
        out = tmp_path / f"effects{len(flag)}.tsv"
        assert cli("variant-effect", *case.cli_models(), *case.cli_target(), "--pairs", pairs, "--device", "cpu",
                   "--out", out, *flag) == 0
        header, rows = read_table_units(out)
        assert header[:4] == ["id", "ref_prediction", "alt_prediction", "effect"]
        assert [row[0] for row in rows] == ids
        for column in ("ref_prediction", "alt_prediction", "effect"):
            values = [float(row[header.index(column)]) for row in rows]
            np.testing.assert_allclose(values, effects[column], rtol=1e-8, atol=1e-12, err_msg=column)


def test_pair_effects_known_answers_on_planted_model(planted):
    refs = [NO_GATA, WITH_GATA, WITH_GATA, NO_GATA]
    alts = [WITH_GATA, NO_GATA, WITH_GATA, "TT" + "C" * 5 + "GATA" + "C" * 10 + "T"]  # last: a 1-nt deletion
    effects = pair_effects(planted, ["creates", "destroys", "same", "indel"], refs, alts, standardized=True)
    assert list(effects.columns) == ["id", "ref_prediction", "alt_prediction", "effect"]
    np.testing.assert_array_equal(effects["effect"], [1.0, -1.0, 0.0, 1.0])
    np.testing.assert_array_equal(effects["ref_prediction"], [0.0, 1.0, 1.0, 0.0])
    assert list(effects["id"]) == ["creates", "destroys", "same", "indel"]


def test_pair_effects_progress_is_one_plain_line_in_a_log(planted, capsys):
    """stderr not a terminal: one final line with the count of distinct sequences; none when disabled."""
    refs, alts = [NO_GATA, WITH_GATA, NO_GATA], [WITH_GATA, NO_GATA, "TT" + "C" * 5 + "GATA" + "C" * 10 + "T"]
    pair_effects(planted, ["a", "b", "c"], refs, alts, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("sequences predicted: 100%") and " 3/3 " in err and err.count("\n") == 1 and "\r" not in err
    pair_effects(planted, ["a", "b", "c"], refs, alts, progress=False)
    assert capsys.readouterr().err == ""


def test_pair_effects_equal_predict_difference_on_a_random_run(tiny_run, one_thread):
    model = proformer.load(tiny_run, device="cpu")
    rng = np.random.default_rng(1)
    refs = random_dna(rng, 12, 23)
    alts = [ref[:10] + "ACGT"[("ACGT".index(ref[10]) + 1) % 4] + ref[11:] for ref in refs[:6]]  # SNVs
    alts += [ref[:8] + "GG" + ref[8:] for ref in refs[6:9]] + [ref[:8] + ref[11:] for ref in refs[9:]]  # indels
    effects = pair_effects(model, [str(i) for i in range(12)], refs, alts, standardized=True)
    expected = model.predict(alts, standardized=True) - model.predict(refs, standardized=True)
    np.testing.assert_allclose(effects["effect"], expected, rtol=1e-6, atol=1e-9)
    assert np.abs(effects["effect"]).min() > 0  # a random model does notice each variant


def test_run_variant_effect_pairs_file_gz_and_log2_rule(tmp_path, tiny_run, one_thread):
    rng = np.random.default_rng(2)
    refs, alts = random_dna(rng, 5, 23), random_dna(rng, 5, 22)
    pairs = tmp_path / "pairs.tsv.gz"
    with gzip.open(pairs, "wt") as handle:
        handle.write(PAIR_HEADER + "".join(f"p{i}\t{r.lower()}\t{a}\n" for i, (r, a) in enumerate(zip(refs, alts))))
    out = tmp_path / "effects.tsv"
    result = run_variant_effect(tiny_run, out, pairs=pairs, standardized=True, device="cpu", progress=False)
    columns, rows = _read_tsv(out)
    assert columns == ["id", "ref_prediction", "alt_prediction", "effect"]  # standardised units: no ratio
    assert result["rows"] == 5 and result["skipped"] == {} and result["log2_ratio"] is False
    model = proformer.load(tiny_run, device="cpu")
    np.testing.assert_allclose([float(row["effect"]) for row in rows],
                               model.predict(alts, standardized=True) - model.predict(refs, standardized=True),
                               rtol=1e-6, atol=1e-8)
    assert [row["id"] for row in rows] == [f"p{i}" for i in range(5)]


def test_cli_pairs_ensemble_effects_are_the_mean_of_the_runs(tmp_path, tiny_run, one_thread):
    """``proformer variant-effect --model A --model B --pairs``: one row per pair, in file order,
    with the mean of the two runs' predictions, hence the mean of their effects."""
    other = write_tiny_run(tmp_path / "other", seed=1)
    rng = np.random.default_rng(8)
    refs = random_dna(rng, 6, 23)
    alts = [ref[:10] + "ACGT"[("ACGT".index(ref[10]) + 1) % 4] + ref[11:] for ref in refs[:4]]  # SNVs
    alts += [ref[:8] + "GG" + ref[8:] for ref in refs[4:]]  # insertions
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(PAIR_HEADER + "".join(f"p{i}\t{r}\t{a}\n" for i, (r, a) in enumerate(zip(refs, alts))))

    def cli(runs, name):
        models = [word for run in runs for word in ("--model", str(run))]
        out = tmp_path / name
        assert main(["variant-effect", *models, "--pairs", str(pairs), "--out", str(out), "--no-progress"]) == 0
        columns, rows = _read_tsv(out)
        assert columns[:4] == ["id", "ref_prediction", "alt_prediction", "effect"]
        assert [row["id"] for row in rows] == [f"p{i}" for i in range(6)]
        return {column: np.array([float(row[column]) for row in rows]) for column in columns[1:4]}

    single = [cli([run], f"single{i}.tsv") for i, run in enumerate((tiny_run, other))]
    both = cli([tiny_run, other], "both.tsv")
    assert not np.allclose(single[0]["effect"], single[1]["effect"])  # two different models
    for column in ("ref_prediction", "alt_prediction", "effect"):
        np.testing.assert_allclose(both[column], (single[0][column] + single[1][column]) / 2, rtol=1e-6, atol=1e-8)


def test_log2_ratio_only_for_positive_training_unit_predictions(tmp_path, planted):
    rows = pair_effects(planted, ["a", "b"], [NO_GATA, WITH_GATA], [WITH_GATA, WITH_GATA])  # count * 2 + 1 > 0
    assert not rows.standardized and rows.units == "training units"  # the default
    assert write_effects(rows, tmp_path / "ratio.tsv")
    columns, written = _read_tsv(tmp_path / "ratio.tsv")
    assert columns[-1] == "log2_ratio"
    np.testing.assert_allclose([float(row["log2_ratio"]) for row in written], [np.log2(3.0), 0.0])

    standardised = pair_effects(planted, ["a"], [NO_GATA], [WITH_GATA], standardized=True)
    assert not write_effects(standardised, tmp_path / "z.tsv")
    rows.columns["ref_prediction"] = np.array([0.0, 3.0])  # a prediction of 0: the ratio has no meaning
    assert not write_effects(rows, tmp_path / "zero.tsv")
    for name in ("z.tsv", "zero.tsv"):
        assert "log2_ratio" not in _read_tsv(tmp_path / name)[0]


def test_snv_scan_rows_are_the_ism_values(tiny_run, one_thread):
    model = proformer.load(tiny_run, device="cpu")
    rng = np.random.default_rng(3)
    sequences = [random_dna(rng, 1, 23)[0], random_dna(rng, 1, 15)[0][:7] + "N" + random_dna(rng, 1, 13)[0],
                 random_dna(rng, 1, 30)[0]]  # all seen; with an N; cut to the window's centre
    table = snv_effects(model, ["a", "b", "c"], sequences, standardized=True)
    laid = model.lay_out(sequences)
    reference, values = substitution_predictions(Scorer(model, standardized=True), laid)

    seen = laid.window >= 0
    per_position = np.where(laid.input_codes == 4, 4, 3)
    assert len(table["effect"]) == int((per_position * seen).sum())
    for i, name in enumerate("abc"):
        mine = table["id"] == name
        assert set(table["position"][mine]) == set(np.flatnonzero(seen[i]))  # only positions the model sees
    row = np.array(["abc".index(i) for i in table["id"]])
    base = np.array(["ACGT".index(a) for a in table["alt"]])
    np.testing.assert_array_equal(table["alt_prediction"], values[row, base, table["position"]])
    np.testing.assert_array_equal(table["ref_prediction"], reference[row])
    np.testing.assert_array_equal(table["effect"], table["alt_prediction"] - table["ref_prediction"])
    assert all(sequences[r][p] == ref for r, p, ref in zip(row, table["position"], table["ref"]))
    assert (table["ref"] != table["alt"]).all()


def test_snv_scan_positions_are_input_positions(planted):
    # Input position 12 is the C of GATC (after the 2-nt head flank): C>A there makes GATA.
    sequence = "TT" + "CCCCCCCGATCCCCCCCCCC" + "T"
    table = snv_effects(planted, ["s"], [sequence], standardized=True)
    changed = table["effect"] != 0
    assert list(zip(table["position"][changed], table["ref"][changed], table["alt"][changed])) == [(12, "C", "A")]
    assert table["effect"][changed][0] == 1.0
    assert set(table["position"]) == set(range(2, 22))  # the flanks (0, 1 and 22) are not listed


def test_run_variant_effect_snv_scan_file(tmp_path, tiny_run, one_thread):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">first\n" + "ACGTACGTACGTACGTACGTACG\n>second\nTTGCA\nTTGCATTGCA\n")
    out = tmp_path / "scan.tsv"
    result = run_variant_effect(tiny_run, out, snv_scan=fasta, standardized=True, device="cpu", progress=False)
    columns, rows = _read_tsv(out)
    assert columns == ["id", "position", "ref", "alt", "ref_prediction", "alt_prediction", "effect"]  # z: no ratio
    assert len(rows) == result["rows"] == 3 * (20 + 12)
    assert result["positions_not_seen"] == 3 + 3  # 2 + 1 flank positions of each sequence
    assert {row["id"] for row in rows} == {"first", "second"}


def test_vcf_windows_put_the_variant_at_the_centre_and_reanchor_indels(genome_files):
    fasta, vcf, chr1 = genome_files
    g = chr1.upper().replace("R", "N")  # the model reads soft-masked bases as bases, IUPAC R as N
    genome = Genome(fasta, str(fasta))
    try:
        variants = read_vcf(vcf)
        kept, skipped = plan_vcf(variants, genome, WIDTH, on_mismatch="skip")
        refs, alts = vcf_windows(kept, genome, WIDTH)
    finally:
        genome.close()
    assert skipped == {"symbolic_alt": 1, "off_chromosome": 2, "ref_mismatch": 1}
    by_id = {v.id: i for i, v in enumerate(kept)}
    assert all(len(w) == WIDTH for w in refs + alts)

    insertion = by_id["ins1"]  # POS 80 = 0-based 79 at index 10; GGG after it, right context shifted
    assert refs[insertion] == g[69:89]
    assert alts[insertion] == g[69:79] + g[79] + "GGG" + g[80:86]
    assert "N" in refs[insertion]  # the R at 75

    deletion = by_id["."]  # POS 120: REF g[119:123] -> g[119]; 3 more genome bases fill the right end
    assert refs[deletion] == g[109:129]
    assert alts[deletion] == g[109:119] + g[119] + g[123:132]

    snv = by_id["snv1"]  # in a soft-masked stretch: REF matched case-insensitively
    assert alts[snv][10] == kept[snv].alt and alts[snv][:10] + alts[snv][11:] == refs[snv][:10] + refs[snv][11:]


def test_run_variant_effect_vcf_skip_counts_and_rc_averaged_predictions(tmp_path, genome_files, genomic_run,
                                                                         one_thread):
    fasta, vcf, chr1 = genome_files
    out = tmp_path / "vcf_effects.tsv"
    result = run_variant_effect(genomic_run, out, vcf=vcf, fasta=fasta, on_mismatch="skip", standardized=True,
                                device="cpu", progress=False)
    assert result["skipped"] == {"symbolic_alt": 1, "off_chromosome": 2, "ref_mismatch": 1}
    assert set(result["skipped"]) == set(SKIP_REASONS) and result["rc_average"] is True
    columns, rows = _read_tsv(out)
    assert columns == ["chrom", "pos", "id", "ref", "alt", "ref_prediction", "alt_prediction", "effect"]
    assert [row["id"] for row in rows] == ["snv1", "ins1", rows[2]["id"], "multi", "multi"] and result["rows"] == 5

    g = chr1.upper().replace("R", "N")
    insertion = rows[1]
    model = proformer.load(genomic_run, device="cpu", rc_average=True)
    expected = model.predict([g[69:89], g[69:79] + g[79] + "GGG" + g[80:86]], standardized=True)
    np.testing.assert_allclose([float(insertion["ref_prediction"]), float(insertion["alt_prediction"])], expected,
                               rtol=1e-6, atol=1e-8)


def test_vcf_ref_mismatch_is_an_error_naming_the_line(tmp_path, genome_files, genomic_run):
    fasta, vcf, chr1 = genome_files
    out = tmp_path / "never.tsv"
    with pytest.raises(InputError, match=rf"{vcf}:9: REF does not match .*chr1:170.*'{chr1[169].upper()}'") as error:
        run_variant_effect(genomic_run, out, vcf=vcf, fasta=fasta, device="cpu", progress=False)
    assert "--on-mismatch skip" in str(error.value)
    assert not out.exists()


def test_vcf_unknown_chromosome_lists_the_genome_names(tmp_path, genome_files, genomic_run):
    fasta, _, chr1 = genome_files
    vcf = tmp_path / "numbered.vcf.gz"
    with gzip.open(vcf, "wt") as handle:
        handle.write(f"#CHROM\tPOS\tID\tREF\tALT\n1\t50\tx\t{chr1[49]}\tA\n")
    out = tmp_path / "never.tsv"
    with pytest.raises(InputError, match=rf"{vcf}:2: chromosome '1' is not in the genome .*chr1, chr2.*'chr' prefix"):
        run_variant_effect(genomic_run, out, vcf=vcf, fasta=fasta, device="cpu", progress=False)
    assert not out.exists()


def test_pair_effects_are_the_differences_the_official_score_correlates(dream_dir, one_thread):
    from proformer.io.submission import N_TEST, load_test_sequences
    from proformer.score import subset_definitions
    from proformer.score.official import subset_values

    # subset_values is the score's own code path for a paired subset: x[alt] - x[ref], which score_public correlates.

    snvs = subset_definitions(dream_dir, "public")["SNVs"]
    pairs = snvs.indices[:400]  # (alt, ref) test indices; a few hundred keep this fast
    snvs = dataclasses.replace(snvs, indices=pairs, truth=snvs.truth[:400])
    sequences = load_test_sequences(dream_dir)

    info = RunInfo(model=ModelConfig(kmer=3, dim=8, heads=1, blocks=1, readout=2, length=100, n_targets=1),
                   layout=Layout(), target=TargetInfo(names=["expression"], mean=[0.0], std=[1.0], standardized=True),
                   rc_average=True)
    torch.manual_seed(6)
    model = Run(Proformer(info.model).eval(), info)

    used = np.unique(pairs)
    vector = np.full(N_TEST, np.nan)  # the score's prediction vector, row i = test index i
    vector[used] = model.predict([sequences[i] for i in used])
    expected = subset_values(vector, snvs)

    effects = pair_effects(model, [f"{alt},{ref}" for alt, ref in pairs], [sequences[ref] for _, ref in pairs],
                           [sequences[alt] for alt, _ in pairs])
    np.testing.assert_allclose(effects["effect"], expected, rtol=1e-6, atol=1e-9)
    assert np.std(expected) > 0


def test_pairs_wrong_header_is_an_error_and_writes_nothing(tmp_path, tiny_run):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("id\tref\talt\np1\tACGTACGTACGT\tACGTACGTACGA\n")
    out = tmp_path / "out.tsv"
    with pytest.raises(InputError, match=rf"{pairs}:1: the header must name the columns id, ref_sequence, "
                                         r"alt_sequence.*ref_sequence, alt_sequence missing"):
        run_variant_effect(tiny_run, out, pairs=pairs, device="cpu", progress=False)
    assert not out.exists()


def test_pairs_bad_symbol_and_duplicate_id_name_the_line(tmp_path, tiny_run):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(PAIR_HEADER + "p1\tACGTACGTACGT\tACGTACGTACGA\n\np2\tACGTACXTACGT\tACGTACGTACGT\n")
    out = tmp_path / "out.tsv"
    with pytest.raises(InputError, match=rf"{pairs}:4: ref_sequence: invalid symbol 'X' at position 7"):
        run_variant_effect(tiny_run, out, pairs=pairs, device="cpu", progress=False)
    assert not out.exists()
    pairs.write_text(PAIR_HEADER + "p1\tACGTACGTACGT\tACGTACGTACGA\np1\tACGT\tACGA\n")
    with pytest.raises(InputError, match=rf"{pairs}:3: id 'p1' already names the pair on line 2"):
        read_pairs(pairs)


def test_arguments_are_checked_before_anything_is_written(tmp_path, tiny_run, genome_files):
    fasta, vcf, _ = genome_files
    out = tmp_path / "out.tsv"
    with pytest.raises(ValueError, match="--vcf needs --fasta GENOME"):
        run_variant_effect(tiny_run, out, vcf=vcf)
    with pytest.raises(ValueError, match="exactly one input.*got pairs, vcf"):
        run_variant_effect(tiny_run, out, pairs=vcf, vcf=vcf, fasta=fasta)
    with pytest.raises(ValueError, match="--fasta is read only with --vcf"):
        run_variant_effect(tiny_run, out, snv_scan=vcf, fasta=fasta)
    with pytest.raises(ValueError, match="--on-mismatch maybe: use error or skip"):
        run_variant_effect(tiny_run, out, vcf=vcf, fasta=fasta, on_mismatch="maybe")
    with pytest.raises(ValueError, match="is the input file"):
        run_variant_effect(tiny_run, vcf, vcf=vcf, fasta=fasta)
    assert not out.exists()


def test_devices_2_writes_the_bytes_of_one_process(tmp_path):
    """`variant-effect --devices 2` (CPU, gloo): each process predicts its share of every pass,
    rank 0 writes: the same bytes as one process, for an SNV scan of 20 sequences (N, some longer
    than the window, so unseen positions) and for pairs (a shared reference, an indel); said once,
    no temporary left. Batches of 8 give several slices of 256 mutants, the last split unevenly."""

    rng = np.random.default_rng(5)
    sequences = ["".join(rng.choice(list("ACGTN"), int(rng.integers(8, 30)))) for _ in range(20)]
    (tmp_path / "in.fa").write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(sequences)))
    alts = [s[:5] + "ACGT"[i % 4] + s[6:] if i % 7 else s[:4] + s[6:] for i, s in enumerate(sequences)]
    refs = [sequences[0] if i % 5 == 0 else s for i, s in enumerate(sequences)]
    (tmp_path / "pairs.tsv").write_text(PAIR_HEADER + "".join(f"p{i}\t{r}\t{a}\n" for i, (r, a) in enumerate(zip(refs, alts))))
    run, script = write_tiny_run(tmp_path / "run", seed=3), cli_script(tmp_path)

    def command(mode, source, devices):
        return ["variant-effect", "--model", str(run), f"--{mode}", str(tmp_path / source), "--out",
                str(tmp_path / f"{mode}.{devices}.tsv"), "--batch-size", "8", "--device", "cpu", "--no-progress",
                "--devices", str(devices)]

    inputs = {"snv-scan": "in.fa", "pairs": "pairs.tsv"}

    def one_process():
        for mode, source in inputs.items():
            with pytest.warns(RuntimeWarning, match="longer than the model's window"):
                assert main(command(mode, source, 1)) == 0

    done = beside_processes(script, {mode: command(mode, source, 2) for mode, source in inputs.items()}, one_process)
    for mode, (status, stdout, stderr) in done.items():
        assert status == 0, stderr[-3000:]
        assert stdout.count("variant effects") == 1 and stderr.count("longer than the model's window") == 1  # rank 0
        assert (tmp_path / f"{mode}.2.tsv").read_bytes() == (tmp_path / f"{mode}.1.tsv").read_bytes()
    assert len((tmp_path / "snv-scan.1.tsv").read_text().splitlines()) > 300
    assert len((tmp_path / "pairs.1.tsv").read_text().splitlines()) == 21
    assert sorted(path.name for path in tmp_path.iterdir() if ".tsv" in path.name) == [
        "pairs.1.tsv", "pairs.2.tsv", "pairs.tsv", "snv-scan.1.tsv", "snv-scan.2.tsv"]


def test_devices_refuses_a_pipe_in_one_line(tmp_path, capsys):
    """Every process of --devices N reads the input: a pipe (which one reader would drain) is
    refused before any work, naming the option, and nothing is written."""
    import os

    os.mkfifo(tmp_path / "in.fifo")
    run = write_tiny_run(tmp_path / "run")
    code = main(["variant-effect", "--model", str(run), "--snv-scan", str(tmp_path / "in.fifo"), "--out",
                 str(tmp_path / "out.tsv"), "--device", "cpu", "--devices", "2"])
    error = capsys.readouterr().err
    assert code == 2 and len(error.strip().splitlines()) == 1
    assert f"--devices 2: every process reads --snv-scan {tmp_path / 'in.fifo'}; give a file" in error
    assert not (tmp_path / "out.tsv").exists()
