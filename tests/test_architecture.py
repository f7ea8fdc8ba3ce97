"""The layering that docs/architecture.md promises, checked on the imports themselves.

Each check runs in a fresh interpreter, so what an import pulls in is not hidden by what other
tests imported before.
"""

import json
import subprocess
import sys

import pytest


def loaded_after(module: str) -> set[str]:
    """Names of the modules loaded by importing ``module`` in a fresh interpreter."""
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", ["proformer.sequence", "proformer.metrics", "proformer.score",
                                    "proformer.io.submission", "proformer.data.splits"])
def test_modules_below_the_model_need_no_torch(module):
    """Reading files, laying out sequences and scoring run where torch is not installed."""
    assert "torch" not in loaded_after(module)


def test_the_model_imports_nothing_of_data_training_or_the_command_line():
    """A user can copy proformer.model into their own training loop."""
    loaded = loaded_after("proformer.model")
    ours = {name for name in loaded if name.startswith("proformer.")}
    assert not {name for name in ours if name.split(".")[1] in {"data", "train", "cli", "predict", "experiments"}}
    assert "lightning" not in loaded
