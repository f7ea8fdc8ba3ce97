import subprocess
import sys

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
