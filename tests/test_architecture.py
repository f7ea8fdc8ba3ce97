"""The layering that docs/architecture.md promises, checked on the imports themselves.

Each check runs in a fresh interpreter, so what an import pulls in is not hidden by what other
tests imported before.
"""


from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest


def loaded_after(module: str) -> set[str]:
    """Names of the modules loaded by importing ``module`` in a fresh interpreter."""
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


SOURCE = Path(__file__).resolve().parent.parent / "src" / "proformer"


#: Calls that parse text: a module above io/ that makes one reads a file format itself.
PARSING = {"split", "rsplit", "splitlines", "partition", "rpartition", "readline", "readlines", "read_text",
           "reader", "DictReader", "loadtxt", "genfromtxt", "parse_number", "parse_numbers"}


_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # "import torch" now raises ImportError, as where it is not installed
from pathlib import Path
import proformer.data.prepare
import proformer.data.atac
from proformer.io.dataset import validate
root = Path(sys.argv[1])
(root / "in.tsv").write_text("ACGTACGT\\t1.5\\nACGGT\\t2\\n")
meta = proformer.data.prepare.prepare(root / "in.tsv", root / "ds", trim=(0, 0), progress=False)
assert validate(root / "ds") == meta and meta["rows_kept"] == 2
print("prepared without torch")
"""


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


@pytest.mark.parametrize("module", ["proformer.io.inputs", "proformer.io.reader", "proformer.io.pairs",
                                    "proformer.io.tables", "proformer.io.fasta", "proformer.io.sniff"])
def test_the_readers_need_no_torch(module):
    """Files are parsed below the model: a reader pulls in neither torch nor the inference layer."""
    loaded = loaded_after(module)
    assert "torch" not in loaded
    assert "proformer.inference" not in loaded


def test_import_proformer_is_light_and_the_verbs_load_on_use():
    """``import proformer`` and looking up ``proformer.ism`` and friends load no torch; each names
    the function it calls, which is imported on the first call."""
    code = ("import sys, proformer; names = [f.calls for f in (proformer.load, proformer.ism, "
            "proformer.attribute, proformer.variant_effect, proformer.design)]; print(*names, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["proformer.inference.load", "proformer.interpret.ism.ism",
                                   "proformer.interpret.attribute.attribute",
                                   "proformer.interpret.variants.variant_effect", "proformer.interpret.design.design",
                                   "False"]


@pytest.mark.parametrize("path", ["predict.py", "evaluate.py", "inference.py"])
def test_prediction_and_evaluation_parse_nothing(path):
    """Files are read in io/ only: predict, evaluate and the inference layer call the readers and
    never split, csv-read, json-load or number-parse text themselves."""
    tree = ast.parse((SOURCE / path).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert not imported & {"csv", "io", "gzip"}, imported
    calls = {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
             for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert not calls & PARSING, calls & PARSING
    assert "open" not in calls
    json_reads = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in ("load", "loads")
                  and isinstance(node.value, ast.Name) and node.value.id == "json"]
    assert not json_reads  # json.dump (writing) is fine


def test_no_module_is_over_600_lines_but_the_model():
    """Small modules with one job: only model/proformer.py, the whole model top-down, may be long."""
    long = {str(path.relative_to(SOURCE)): n for path in SOURCE.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > 600 and path != SOURCE / "model" / "proformer.py"}
    assert not long, long


def test_cli_starts_without_heavy_imports():
    code = "import sys; from proformer.cli import build_parser; build_parser(); print(sorted(m for m in ('torch', 'lightning', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_prepare_runs_without_torch(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "prepared without torch" in result.stdout


def test_import_proformer_stays_light():
    import subprocess
    import sys

    code = "import sys, proformer; proformer.load; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
