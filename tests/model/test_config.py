"""Tests of :mod:`proformer.model.config`."""

from __future__ import annotations

from proformer.cli import main


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
