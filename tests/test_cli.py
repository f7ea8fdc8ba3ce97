import json
import subprocess
import sys

import numpy as np
import pytest

from proformer.cli import main
from proformer.config import apply_overrides
from proformer.model import model_preset


def test_model_command_prints_the_published_total(capsys):
    assert main(["model", "--preset", "dream2022"]) == 0
    out = capsys.readouterr().out
    assert "47,425,543" in out
    assert "blocks.3.attention" in out and "8,401,408" in out


def test_model_command_applies_overrides(capsys):
    assert main(["model", "--preset", "grid", "--set", "readout=pool", "--set", "model.dim=32"]) == 0
    out = capsys.readouterr().out
    assert "dim=32" in out and "readout=pool" in out and "expression_heads" not in out
    assert "0 expression heads + 200 sequence positions (both strands)" in out


def test_model_command_counts_tokens_per_strand_when_strands_are_separate(capsys):
    assert main(["model", "--preset", "dream_attn"]) == 0
    assert "0 expression heads + 100 sequence positions (one strand: each strand is its own example)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "override, expected",
    [
        ("foo=1", "valid keys: kmer, dim"),
        ("activation=relu", "valid values are swiglu, glu"),
        ("dim=abc", "expected int"),
        ("readout=heads", "use 'pool' or a number"),
        ("mask_ratio=1.5", "must be in [0, 1)"),
        ("dim", "expected key=value"),
    ],
)
def test_bad_overrides_are_errors_that_list_valid_values(capsys, override, expected):
    assert main(["model", "--preset", "grid", "--set", override]) == 2
    assert expected in capsys.readouterr().err


def test_unknown_preset_lists_available(capsys):
    assert main(["model", "--preset", "nope"]) == 2
    assert "dream2022, grid" in capsys.readouterr().err


def test_overrides_parse_yaml_scalars():
    config = apply_overrides(model_preset("grid"), ["readout=32", "dropout=0", "block_order=conformer"])
    assert config.readout == 32 and config.dropout == 0.0 and isinstance(config.dropout, float)
    assert config.block_order == "conformer"
    assert model_preset("grid").readout == 8  # presets are not mutated


def test_cli_starts_without_heavy_imports():
    code = "import sys; from proformer.cli import build_parser; build_parser(); print(sorted(m for m in ('torch', 'lightning', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_prepare_train_predict_through_the_cli(tmp_path, capsys):
    from proformer.data.synthetic import simulate_library, write_tsv

    source = write_tsv(simulate_library(300, seed=1), tmp_path / "lib.tsv")
    assert main(["prepare", str(source), "--out", str(tmp_path / "ds"), "--no-progress"]) == 0
    assert "300 of 300 rows kept" in capsys.readouterr().out
    assert main(["train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run"), "--no-progress",
                 "--set", "dim=8", "--set", "epochs=1", "--set", "batch_size=100"]) == 0
    assert "best epoch 1: validation Pearson" in capsys.readouterr().out
    assert main(["predict", "--model", str(tmp_path / "run"), "--input", str(source), "--out", str(tmp_path / "p.tsv"),
                 "--no-progress"]) == 0
    assert len((tmp_path / "p.tsv").read_text().splitlines()) == 1 + 300  # the header line, then a row each
    # A second run into the same directory needs --resume or another --out.
    assert main(["train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "already holds a trained model" in capsys.readouterr().err


def test_prepare_bad_input_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("ACGT\t1.0\nACXT\t2.0\n")
    assert main(["prepare", str(bad), "--out", str(tmp_path / "ds"), "--trim", "0,0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bad.tsv:2" in err and "'X'" in err
    assert main(["prepare", str(bad), "--out", str(tmp_path / "ds"), "--trim", "0,0", "--on-bad", "skip", "--no-progress"]) == 0
    assert json.loads((tmp_path / "ds" / "meta.json").read_text())["dropped"]["invalid_symbol"] == 1


def test_score_command_prints_the_official_score(dream_dir, capsys):
    path = dream_dir / "peer_predictions" / "Unlock_DNA_public.json"
    assert main(["score", str(path), "--data-dir", str(dream_dir)]) == 0
    out = capsys.readouterr().out
    assert "Score PearsonR^2     0.7806" in out and "Score Spearman       0.8271" in out
    assert main(["score", str(path), "--data-dir", str(dream_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert round(result["score_pearson_r2"], 4) == 0.7806
    assert main(["score", str(path), "--data-dir", str(dream_dir), "--split", "private"]) == 2
    assert "--truth" in capsys.readouterr().err


def test_predict_dream_json_follows_the_submission_order(dream_dir, tmp_path):
    import torch

    from proformer.model import Proformer
    from proformer.predict import predict
    from proformer.io.run import RunInfo, TargetInfo, write_run_model
    from proformer.sequence import Layout

    config = model_preset("grid")
    config = apply_overrides(config, ["dim=8", "blocks=1", "readout=1", "kmer=3", "heads=1"])
    torch.manual_seed(0)
    info = RunInfo(model=config, layout=Layout(),
                   target=TargetInfo(names=["expression"], mean=[11.0], std=[2.0], standardized=True))
    write_run_model(tmp_path, Proformer(config).state_dict(), info)
    out = tmp_path / "submission.json"
    predict(tmp_path, dream_dir / "test_sequences.txt", out, format="dream-json", data_dir=dream_dir,
            batch_size=4096, progress=False)
    submission = json.loads(out.read_text())
    template = json.loads((dream_dir / "public_leaderboard" / "sample_submission.json").read_text())
    assert list(submission) == list(template) and len(submission) == 9045
    assert np.std(list(submission.values())) > 0


@pytest.mark.parametrize("grid, cells", [("poster-yeast", 72), ("poster-atac", 48), ("ablation", 4)])
def test_sweep_dry_run_lists_one_line_per_cell(tmp_path, capsys, grid, cells):
    assert main(["sweep", "--grid", grid, "--out", str(tmp_path / "sweep"), "--dry-run"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == cells


def test_atac_prepare_then_train_through_the_cli(tmp_path, capsys):
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
