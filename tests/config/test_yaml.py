"""Tests of :mod:`proformer.config.yaml`."""

from __future__ import annotations

import subprocess
import sys


def test_the_unique_key_loader_lives_in_config_and_config_does_not_import_experiments():
    from proformer.config.yaml import UniqueKeyLoader, load_yaml
    from proformer.experiments import grids

    assert grids.UniqueKeyLoader is UniqueKeyLoader and grids.load_yaml is load_yaml
    code = ("import sys, proformer.config; "
            "sys.exit(any(m.startswith('proformer.experiments') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_unique_key_loader_keeps_yaml_merge_keys():
    import yaml

    from proformer.experiments.grids import UniqueKeyLoader

    text = "base: &b {dim: 64, heads: 2}\nmodel:\n  <<: *b\n  dim: 128\n"
    assert yaml.load(text, Loader=UniqueKeyLoader)["model"] == {"dim": 128, "heads": 2}
