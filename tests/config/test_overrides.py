"""Tests of :mod:`proformer.config.overrides`."""

from __future__ import annotations

import pytest

from proformer.cli import main
from proformer.config import apply_overrides
from proformer.model import model_preset


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


def test_overrides_parse_yaml_scalars():
    config = apply_overrides(model_preset("grid"), ["readout=32", "dropout=0", "block_order=conformer"])
    assert config.readout == 32 and config.dropout == 0.0 and isinstance(config.dropout, float)
    assert config.block_order == "conformer"
    assert model_preset("grid").readout == 8  # presets are not mutated
