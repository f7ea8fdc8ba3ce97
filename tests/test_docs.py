"""The code blocks of README.md and docs/*.md, checked against the code, so the docs cannot drift.

Every fenced block is checked by its language:

``bash``
    Every command is parsed. A ``proformer ...`` command (line continuations joined, comments
    stripped, ``[optional]`` brackets dropped, placeholders such as ``RUN`` or ``$MASTER_ADDR``
    kept as they are) goes through the real parser, ``proformer.cli.build_parser()``, and its
    ``--set key=value`` overrides through the real override engine on the command's preset: a
    renamed command or flag, an unknown config key or a bad value fails here. ``VAR=value``,
    ``srun``, ``nice`` and ``time`` prefixes are dropped; ``torchrun ... -m proformer.cli`` reads as
    ``proformer``. ``pip install`` must name extras that pyproject.toml defines (and the torch
    that .ci/run pins), ``python benchmarks/X.py`` a script that exists and takes the flags given,
    ``python -m pytest -m M`` a registered marker. Any other program must be in ``EXTERNAL``.
``python``
    Every ``from proformer... import name`` must resolve, and every call of what it imported
    (``train(...)``, ``proformer.load(...)``) must bind to the real signature: a renamed
    function or keyword fails here.
``yaml``
    Run configs load with ``load_run_config``, sweep grids with ``load_grid``.
no language
    Listings (trees, formulas). A line in one that starts like a command is checked as in a bash
    block; better, tag such a block ``bash``.

Besides the blocks, running text is checked too: an inline `proformer CMD --flag` names a real
command and flags, every inline `--flag` is an option of some command (or benchmark script), and
inline config keys (`data.split=hash:0.9`, `train.optimizer`) exist.

**Running blocks.** Each bash and python block is in ``RUN`` or in ``NOT_RUN`` (with the reason it
cannot run here: a GPU, SLURM, a download, hours of training); a new block fails the test until it
is listed. Blocks in ``RUN`` run in one working directory per test session (``workspace``) that
holds the committed DREAM-shaped fixtures of tests/fixtures under the names the docs use
(``train_sequences.txt``, ``test_sequences.txt``, ``dream2022/`` with the 130-row mini test set and
its leaderboard files) and a few small inputs (``seqs.fa``, ``pairs.tsv``, ...). Bash blocks run
their ``proformer`` commands in this process, python blocks are executed. ``replace`` makes a block
cheap (a tiny model, one epoch); each replaced text must still occur in the block, so an edit of the
docs shows up here instead of silently running something else. ``not_run`` names commands of a run
block that are only parsed; ``after`` names blocks whose outputs a block reads; ``check`` asserts
what the block's comments and the text around it promise.

**To add a block** to the docs: write it, then add its key, ``"FILE: first line of the block"`` (a
prefix is enough when it is unique), to ``RUN`` (how to make it cheap, what to check) or to
``NOT_RUN`` (why not). A key that matches no block fails too.
"""


from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import inspect
import io
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from helpers import DATA, TINY_MODEL, as_overrides, torch_threads

from proformer.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository root
    line: int  # of the opening fence
    lang: str  # "bash", "python", "yaml" or "" (none)
    text: str

    @property
    def key(self) -> str:
        first = next((line.strip() for line in self.text.splitlines() if line.strip()), "")
        return f"{self.path}: {first}"

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.lang or 'no language'})"


FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


def read_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a markdown file (an indented fence, in a list item, included)."""
    blocks, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, lang, body = len(opening.group(1)), opening.group(2), []
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        assert j < len(lines), f"{path.name}:{i + 1}: a code fence that is never closed"
        blocks.append(Block(str(path.relative_to(ROOT)), i + 1, lang, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


BLOCKS = [block for path in DOCS for block in read_blocks(path)]


def blocks(lang: str) -> list[Block]:
    return [b for b in BLOCKS if b.lang == lang]


def find_block(key: str) -> Block:
    """The one block whose key starts with ``key``."""
    found = [b for b in BLOCKS if b.key.startswith(key)]
    assert len(found) == 1, f"{key!r} matches {len(found)} blocks: {[str(b) for b in found]}"
    return found[0]


def logical_lines(text: str) -> list[str]:
    """Lines with their ``\\`` continuations joined."""
    lines, pending = [], ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
        else:
            lines.append(pending + line)
            pending = ""
    return lines + ([pending] if pending else [])


SEPARATORS = {"&&", "||", ";", "&", "|"}


ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def shell_commands(text: str) -> list[tuple[str, list[str]]]:
    """``(the line, its words)`` for every command of a shell text: comments stripped, lines split
    at ``&&``, ``;``, ``&`` and ``|``, ``VAR=value`` prefixes and ``srun``/``nice``/``time``
    dropped, ``torchrun ... -m proformer.cli`` and ``python -m proformer.cli`` read as ``proformer``."""
    commands = []
    for line in logical_lines(text):
        words, command = shlex.split(line, comments=True), []
        for word in words + [";"]:
            if word not in SEPARATORS:
                command.append(word)
            elif command:
                commands.append((line.strip(), unwrap(command)))
                command = []
    return commands


def unwrap(words: list[str]) -> list[str]:
    while words and ENV.match(words[0]):
        words = words[1:]
    if words[:1] == ["srun"]:
        return unwrap(words[1:])
    if words[:1] == ["nice"]:
        return unwrap(words[3:] if words[1:2] == ["-n"] else words[1:])
    if words[:1] in (["time"], ["/usr/bin/time"]):
        return unwrap(words[2:] if words[1:2] == ["-v"] else words[1:])
    if words[:1] in (["torchrun"], ["python"], ["python3"]) and "-m" in words:
        module = words.index("-m") + 1
        if words[module:module + 1] == ["proformer.cli"]:
            return ["proformer", *words[module + 1:]]
    return words


def drop_brackets(words: list[str]) -> list[str]:
    """``[--on-mismatch skip]`` (an optional part) -> ``--on-mismatch skip``."""
    return [w.removeprefix("[").removesuffix("]") for w in words]


def parse_proformer(argv: list[str]) -> argparse.Namespace:
    """The real parser's reading of ``proformer ARGV``; its error message on failure."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = build_parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(err.getvalue().strip().splitlines()[-1]) from None
    check_overrides(args)
    return args


def check_overrides(args: argparse.Namespace) -> None:
    """``--set`` keys and values through the override engine, on the config the command uses
    (the run config of its preset; the model config for ``model`` and ``bench``)."""
    from proformer.config import RUN_PRESETS, apply_overrides, run_preset
    from proformer.experiments.grids import BUILTIN_GRIDS

    preset = getattr(args, "preset", None)
    if args.command == "sweep":
        if not args.grid.endswith((".yaml", ".yml")):
            assert args.grid in BUILTIN_GRIDS, f"--grid {args.grid}: not a built-in grid ({', '.join(BUILTIN_GRIDS)})"
        preset = args.base or (BUILTIN_GRIDS[args.grid].preset if args.grid in BUILTIN_GRIDS else "grid")
    if preset is not None:
        assert preset in RUN_PRESETS, f"--preset {preset}: not a preset ({', '.join(RUN_PRESETS)})"
    config = run_preset(preset or "grid")
    if args.command in ("model", "bench"):
        config = config.model
    try:
        apply_overrides(config, getattr(args, "overrides", None) or [])
    except ValueError as error:
        raise AssertionError(str(error)[:300]) from None


def pyproject_extras() -> set[str]:
    """The extras pyproject.toml defines (read as text: Python 3.10 has no tomllib)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.optional-dependencies]")[1].split("\n[")[0]
    return set(re.findall(r"^([\w-]+)\s*=", section, re.MULTILINE))


def pytest_markers() -> str:
    return re.search(r"^markers\s*=\s*\[(.*?)\]$", (ROOT / "pyproject.toml").read_text(), re.MULTILINE | re.DOTALL).group(1)


def check_pip(words: list[str]) -> None:
    assert words[1] == "install", "only pip install is documented"
    extras = pyproject_extras()
    for word in words[2:]:
        named = re.fullmatch(r"\.\[([\w,-]+)\]", word)
        if named:
            for extra in named.group(1).split(","):
                assert extra in extras, f"pip extra [{extra}] is not in pyproject.toml ({', '.join(sorted(extras))})"
        if word.startswith("torch=="):
            ci_pin = re.search(r"torch==(\S+)", (ROOT / ".ci" / "run").read_text()).group(1)
            assert word == f"torch=={ci_pin}", f"{word}: .ci/run installs torch=={ci_pin}"


def check_python(words: list[str]) -> None:
    if words[1:3] == ["-m", "pytest"]:
        markers = pytest_markers()
        for marker in (words[i + 1] for i, w in enumerate(words) if w == "-m" and i > 1):
            assert re.search(rf"\b{marker}\b", markers), f"pytest marker {marker!r} is not registered"
        return
    script = ROOT / words[1]
    assert script.is_file(), f"{words[1]}: no such script"
    source = script.read_text()
    for word in words[2:]:
        if word.startswith("--"):
            flag = word.split("=")[0]
            assert f'"{flag}"' in source, f"{words[1]} takes no {flag}"


#: Programs other than proformer, pip and python that the docs may name, and why they are not checked.
EXTERNAL = {
    "modisco": "TF-MoDISco's own command line (modisco-lite, not a dependency)",
}


def check_command(words: list[str]) -> None:
    program = words[0]
    if program == "proformer":
        parse_proformer(drop_brackets(words[1:]))
    elif program == "pip":
        check_pip(words)
    elif program in ("python", "python3"):
        check_python(words)
    else:
        assert program in EXTERNAL, f"{program}: not a command the docs test knows (add it to EXTERNAL with a reason)"


COMMAND_START = re.compile(r"^\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(?:proformer|pip|python3?|torchrun|srun|nice|time)\s")


def subcommand_parser(words: list[str]) -> argparse.ArgumentParser:
    """The parser of ``proformer WORDS...`` (``atac prepare``: the ``prepare`` under ``atac``)."""
    parser = build_parser()
    for word in words:
        commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not commands:
            break
        assert word in commands[0].choices, f"no command {word!r} (choices: {', '.join(commands[0].choices)})"
        parser = commands[0].choices[word]
    return parser


INLINE = re.compile(r"`(?:[A-Za-z_][A-Za-z0-9_]*=\S+ )*(proformer [^`]+)`")


def check_inline(span: str) -> None:
    """`proformer ...` in running text often holds placeholders (``...``, ``[--set ...]``,
    ``KEY=VALUE``), so only its command, its flag names and its ``--set`` keys are checked."""
    from proformer.config import run_preset

    words = drop_brackets(shlex.split(span.replace("...", "")))[1:]
    parser = subcommand_parser([w for w in words if not w.startswith("-")][:2])
    for word, following in zip(words, words[1:] + [""]):
        flag = word.split("=")[0]
        if flag.startswith("--"):
            assert flag in parser._option_string_actions, f"{flag} is not an option of {parser.prog}"
        if word == "--set" and "=" in following:  # a placeholder value may be rejected, an unknown key may not
            unknown = unknown_key(run_preset("grid"), following, "--set")
            assert not unknown, unknown[0]


def prose(path: Path) -> str:
    """A markdown file's text with its fenced blocks blanked out (line numbers kept)."""
    lines, inside = path.read_text().splitlines(), False
    for i, line in enumerate(lines):
        fence = line.strip().startswith("```")
        if inside or fence:
            lines[i] = ""
        inside ^= fence
    return "\n".join(lines)


def every_option() -> set[str]:
    """The option strings of every proformer command, and the flags of the benchmark scripts."""
    options, parsers = set(), [build_parser()]
    while parsers:
        parser = parsers.pop()
        options |= set(parser._option_string_actions)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
    for script in (ROOT / "benchmarks").glob("*.py"):
        options |= set(re.findall(r'"(--[a-z][a-z0-9-]*)"', script.read_text()))
    return options


#: Flags in running text that belong to other programs.
OTHER_FLAGS = {"--index-url": "pip"}


CONFIG_KEY = re.compile(r"`((?:model|data|train)\.[a-z_]+)(?:=[^`\s]*)?`")


#: What the docs write for "some key" (``--set key=value``).
PLACEHOLDER_KEYS = {"key", "KEY", "field", "FIELD"}


def unknown_key(config, setting: str, where: str) -> list[str]:
    """``[where: the error]`` when ``setting``'s key is not a config key (a placeholder is fine)."""
    from proformer.config import apply_overrides

    if setting.split("=")[0] in PLACEHOLDER_KEYS:
        return []
    try:
        apply_overrides(config, [setting])
    except ValueError as error:
        if str(error).startswith("unknown key"):
            return [f"{where}: {str(error)[:120]}"]
    return []


def imported_names(tree: ast.AST) -> dict[str, object]:
    """``name -> object`` for every ``from proformer... import name`` (and ``import proformer...``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "proformer":
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"line {node.lineno}: {node.module} has no {alias.name}"
                names[alias.asname or alias.name] = getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "proformer":
                    module = importlib.import_module(alias.name)  # "import a.b" binds a, "import a.b as c" a.b
                    names[alias.asname or "proformer"] = module if alias.asname else importlib.import_module("proformer")
    return names


def resolve(node: ast.AST, names: dict[str, object]):
    """The object a ``name`` or ``name.attribute...`` expression stands for, when it is proformer's."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = resolve(node.value, names)
        if owner is not None:
            assert hasattr(owner, node.attr), f"line {node.lineno}: {ast.unparse(node.value)} has no {node.attr}"
            return getattr(owner, node.attr)
    return None


def check_api(block: Block) -> None:
    """Every import from proformer resolves; every call of what it imported binds to its signature."""
    tree = ast.parse(block.text, filename=str(block))
    names = imported_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = resolve(node.func, names)
        if target is None or not callable(target):
            continue
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            continue
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):  # a builtin without a signature
            continue
        try:
            signature.bind(*node.args, **{k.arg: k.value for k in node.keywords})
        except TypeError as error:
            raise AssertionError(f"line {node.lineno}: {ast.unparse(node)[:100]}: {error}") from None


@dataclass(frozen=True)
class Run:
    """How to run one block here (see the module docstring)."""

    replace: dict[str, str] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    not_run: dict[str, str] = field(default_factory=dict)  # bash: line prefix -> why it is only parsed
    check: Callable[[dict], None] | None = None  # python: the block's variables; bash: stdout by "proformer CMD"


#: A model that trains in a second on the 400 fixture rows (``--set`` values).
TINY = [*as_overrides(TINY_MODEL), "train.epochs=1", "train.batch_size=64"]


TINY_SETS = " ".join(f"--set {setting}" for setting in TINY)


def check_model_example(ns: dict) -> None:
    # The comments of README's example: codes (2, 200) uint8, predictions (2,), one-hot (2, 4, 100).
    assert ns["codes"].shape == (2, 200) and ns["codes"].dtype == np.uint8
    assert tuple(ns["prediction"].shape) == (2,)
    assert tuple(ns["x"].grad.shape) == (2, 4, 100)
    assert bool(ns["loss"].isfinite())


def check_whole_path(ns: dict) -> None:
    import torch

    from proformer.inference import (
        Run as LoadedRun,  # not this module's Run (how a block runs)
    )
    from proformer.io.run import RunInfo

    assert "Score PearsonR^2" in ns["__stdout__"]
    assert isinstance(ns["run"], LoadedRun)
    assert isinstance(ns["model"], torch.nn.Module) and isinstance(ns["info"], RunInfo)


def check_dream_path(printed: dict) -> None:
    assert "Score PearsonR^2" in printed["proformer score"]
    assert Path("submission.json").is_file()


def check_ism_example(ns: dict) -> None:
    # "(1, 4, 110); NaN at 0..16 and 97..109": the DREAM flanks are not mutated.
    effects = ns["result"].effects
    assert effects.shape == (1, 4, 110)
    assert np.isnan(effects[0, :, :17]).all() and np.isnan(effects[0, :, 97:]).all()
    assert np.isfinite(effects[0, :, 17:97]).all()


def check_interpretation(printed: dict) -> None:
    # What README's interpretation block promises to write.
    assert {"ism.npz", "logos"} <= {p.name for p in Path("ism").iterdir()}
    assert (Path("attr") / "attributions.npz").is_file() and (Path("attr") / "modisco_hyp.npz").is_file()
    assert Path("effects.tsv").read_text().startswith("id\tref_prediction\talt_prediction\teffect")
    assert Path("designs.tsv").read_text().split("\n")[0].startswith("id\tstep\tedit\tprediction")


def check_atac_example(ns: dict) -> None:
    assert set(ns["result"]["best"]) >= {"epoch", "val_pearson"}


def check_library(ns: dict) -> None:
    library = ns["library"]
    assert len(library.sequences) == 20_000 and {len(s) for s in library.sequences[:100]} == {110}
    assert round(ns["noise_ceiling"](library), 3) == 0.883  # the comment's figure
    assert Path("synthetic_train.txt").read_text().count("\n") == 20_000


#: Blocks run here (in the order of the docs), with what makes them cheap and what they must show.
RUN: dict[str, Run] = {
    "README.md: proformer download dream2022": Run(
        not_run={"proformer download": "downloads the official files; the workspace's dream2022/ is the committed mini set"},
        replace={"--out runs/dream2022\n": f"--out runs/dream2022 {TINY_SETS}\n"},
        check=check_dream_path),
    "README.md: proformer ism --model runs/grid --input seqs.fa": Run(
        after=("README.md: from proformer.data.prepare import prepare",),
        replace={"--top 10": "--top 1", "--max-edits 5": "--max-edits 1"}, check=check_interpretation),
    "README.md: import torch": Run(check=check_model_example),
    "README.md: from proformer.data.prepare import prepare": Run(
        replace={'"train.epochs=5"': ", ".join(f'"{s}"' for s in TINY)}, check=check_whole_path),
    "docs/atac.md: from proformer.config import load_run_config": Run(
        replace={'seed=0)': "seed=0, chrom_length=300_000)", "n=20_000)": "n=1_000)",
                 '"train.epochs=3"': ", ".join(f'"{s}"' for s in TINY)},
        check=check_atac_example),
    "docs/interpretation.md: import proformer": Run(
        after=("README.md: from proformer.data.prepare import prepare",), check=check_ism_example),
    "docs/synthetic-grammar.md: from proformer.data.synthetic import simulate_library, noise_ceiling":
        Run(check=check_library),
    "docs/synthetic-grammar.md: import numpy as np": Run(),
}


#: Blocks that are not run here, and why. They are still checked: bash blocks parsed, python blocks
#: compiled with their imports and calls bound (above).
NOT_RUN: dict[str, str] = {
    "README.md: pip install torch==2.13.0 &&":
        "installs packages and runs the 3-minute quickstart; .ci/run runs it on a fresh clone, and "
        "test_ci_runs_the_readme_install_and_test_commands checks that .ci/run installs the same",
    "README.md: pip install torch==2.13.0 --index-url": "a download from PyTorch's wheel index",
    "README.md: python -m pytest": "the test suite itself",
    "docs/recipes.md: python benchmarks/recipe_study.py --out runs/recipes": "the study: 18 training runs of "
        "7-14 minutes; tests/train/test_recipe.py checks the rule, tests/experiments/test_sweep.py fold sweeps",
    "docs/training-ideas.md: proformer distill --model runs/seed0": "needs three trained runs (minutes each); "
        "tests/test_distill.py distils a two-run ensemble and checks the targets",
    "docs/recipes.md: python benchmarks/recipe_round3.py": "the third round: 16 training runs of about 8 minutes "
        "on one thread each (an hour on two cores)",
    "docs/recipes.md: # the second round": "the study's second round: 16 training runs, 20-50 minutes each on "
        "a shared 2-core CPU; tests/experiments/test_sweep.py runs fold sweeps, tests/test_inference.py ensembles",
    "docs/recipes.md: proformer train --preset dream_attn --data data/sample": "the organisers' hybrid trained on "
        "the DREAM sample (about 20 minutes); tests/model/test_proformer.py builds the preset's model and checks its shapes and gradients",
    "docs/recipes.md: proformer prepare ../shared/data/dream2022/train_sample.txt --out data/sample": "the "
        "recipe trained on the DREAM sample and scored (10 minutes of training); each command runs on tiny data "
        "in test_end_to_end",
    "docs/sweep.md: proformer sweep --grid cv.yaml": "trains 5 folds on a real dataset; tests/test_inference.py runs "
        "ensembles of tiny runs and tests/experiments/test_sweep.py runs fold sweeps",
    "README.md: python benchmarks/gpu_check.py --out gpu_results": "needs a GPU; tests/test_gpu_check.py runs its "
        "machinery (arguments, dependency check, step limits, reports) and a --smoke run on the CPU",
    "README.md: proformer prepare human_lentimpra_sample_train.txt": "the MPRA sample of ../shared and minutes of "
        "training; each step runs on small tables in test_prepare_tables, test_train_shapes and test_evaluate",
    "README.md: import proformer": "needs a trained run directory (tests/test_predict.py runs load().predict)",
    "README.md: proformer atac prepare":
        "needs hg38 and a GM12878 bigWig (downloads); docs/atac.md's simulated example runs the same code",
    "README.md: proformer sweep --grid poster-yeast":
        "72 cells x 20 epochs (GPU hours); tests/experiments/test_sweep.py runs sweeps on tiny grids",
    "README.md: # one machine, 4 GPUs":
        "4 GPUs, torchrun on 2 machines and SLURM; tests/train/test_run.py runs DDP with 2 CPU processes",
    "docs/atac.md: from proformer.data.atac import prepare_atac":
        "reads hg38 and GM12878 files (GB downloads); the simulated-genome example runs the same function",
    "docs/atac.md: proformer atac prepare": "needs hg38, a GM12878 bigWig and peaks (downloads)",
    "docs/atac.md: from proformer.data.genome_sim import simulate_atac": "the genome walkthrough's first step; "
        "the walkthrough trains for 3 minutes (its figures were measured once by hand); docs/atac.md's simulated "
        "example runs simulate_atac",
    "docs/atac.md: # 20,000 windows, chr3 held out": "the genome walkthrough: prepares and trains for 3 minutes; "
        "the simulated example (RUN) trains a tiny ATAC run the same way",
    "docs/atac.md: # chr3 tiled at stride 20": "the genome walkthrough: needs its 3-minute run; tests/tracks run "
        "predict and evaluate --chrom on trained runs",
    "docs/atac.md: # the same 6,400 windows": "the genome walkthrough: needs its 3-minute run; tests/data/test_atac.py checks "
        "that the two evaluate paths agree on a trained ATAC run",
    "docs/atac.md: from proformer.plots import plot_tracks": "the genome walkthrough: needs its predicted track; "
        "tests/test_plots.py runs plot_tracks on small bigWigs",
    "docs/interpretation.md: proformer ism":
        "README's interpretation block runs ism, attribute, variant-effect and design on a tiny run; "
        "these differ from it in inputs and options only",
    "docs/interpretation.md: proformer attribute": "as for ism; modisco (TF-MoDISco) is not installed",
    "docs/interpretation.md: proformer variant-effect": "as for ism; the VCF line needs hg38 and a genomic run",
    "docs/interpretation.md: proformer design": "as for ism; --oracle needs a second trained run",
    "docs/sweep.md: proformer sweep --grid poster-yeast":
        "72 cells (GPU hours); tests/experiments/test_sweep.py runs sweeps on tiny grids",
    "docs/sweep.md: from proformer.experiments import run_sweep":
        "trains poster-yeast's 72 cells for 20 epochs (GPU hours); tests/experiments/test_sweep.py runs sweeps on tiny grids",
    "docs/sweep.md: proformer predict --model OUT/cells/mask-H32":
        "needs a finished ablation sweep and the real DREAM test set",
    "docs/sweep.md: OMP_NUM_THREADS=1 nice": "the CPU study: 3.4 hours of training",
    "docs/sweep.md: #!/bin/bash": "a SLURM batch script: needs a cluster scheduler (sbatch) and a PostgreSQL server the "
        "nodes reach; tests/experiments/test_study.py runs sweep workers on a PostgreSQL server it starts, one of them killed",
    "docs/training-ideas.md: OMP_NUM_THREADS=1 python": "the study: 36 training runs of minutes each",
    "docs/tune.md: proformer prepare my_library.tsv --out data/lib": "a user's own library; "
        "tests/experiments/test_tune.py runs tune on a prepared dataset and predicts with OUT/best",
    "docs/tune.md: #!/bin/bash": "a SLURM batch script: needs a cluster scheduler and a PostgreSQL server the nodes reach",
    "docs/tune.md: #SBATCH --nodes=1 --gres=gpu:8 --cpus-per-task=32": "a SLURM batch script on a node of 8 GPUs; "
        "tests/interpret/test_variants.py and tests/test_predict.py run --devices 2 on a CPU",
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A working directory with the files the docs name, and a runner that runs a block in it once."""
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(DATA / "dream_mini", root / "dream2022")
    for where in (root, root / "dream2022"):
        shutil.copyfile(DATA / "dream_train.tsv", where / "train_sequences.txt")
    shutil.copyfile(DATA / "dream_mini" / "test_sequences.txt", root / "test_sequences.txt")
    # The interpretation examples' inputs: a few of the fixture's test sequences.
    tests = (DATA / "dream_mini" / "test_sequences.txt").read_text().split()[:2]
    for name in ("seqs.fa", "seeds.fa", "sequences.fa"):
        (root / name).write_text("".join(f">seq{i}\n{s}\n" for i, s in enumerate(tests)))
    mutated = [s[:50] + {"A": "C"}.get(s[50], "A") + s[51:] for s in tests]
    (root / "pairs.tsv").write_text("id\tref_sequence\talt_sequence\n"
                                    + "".join(f"snv{i}\t{s}\t{m}\n" for i, (s, m) in enumerate(zip(tests, mutated))))
    done: set[str] = set()

    def run(key: str) -> None:
        if key in done:
            return
        spec = RUN[key]
        for first in spec.after:
            run(first)
        block = find_block(key)
        text = block.text
        for old, new in spec.replace.items():
            assert old in text, f"{block}: the text to replace, {old!r}, is no longer in the block"
            text = text.replace(old, new)
        with working_directory(root), torch_threads(1):
            if block.lang == "python":
                run_python(block, text, spec)
            else:
                run_shell(block, text, spec)
        done.add(key)

    return run


@contextlib.contextmanager
def working_directory(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_python(block: Block, text: str, spec: Run) -> None:
    out = io.StringIO()
    namespace: dict = {"__name__": "__docs__"}
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(text, str(block), "exec"), namespace)
    namespace["__stdout__"] = out.getvalue()
    if spec.check:
        spec.check(namespace)


def run_shell(block: Block, text: str, spec: Run) -> None:
    printed = {}
    for line, words in shell_commands(text):
        if any(line.startswith(prefix) for prefix in spec.not_run):
            continue
        assert words[0] == "proformer", f"{block}: only proformer commands run here: {line}"
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(words[1:])
        assert code == 0, f"{block}: `{line}` exited {code}: {err.getvalue()[-1500:]}"
        printed[" ".join(words[:2])] = out.getvalue()
    if spec.check:
        spec.check(printed)


FIGURES_START, FIGURES_END = "<!-- readme-figures:start -->", "<!-- readme-figures:end -->"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang in ("bash", "")], ids=str)
def test_every_command_in_a_shell_block_parses(block):
    text = block.text
    if block.lang == "":  # a listing: only its lines that look like commands
        text = "\n".join(line for line in logical_lines(text) if COMMAND_START.match(line))
    problems = []
    for line, words in shell_commands(text):
        try:
            check_command(words)
        except AssertionError as error:
            problems.append(f"{block}: {line}\n  -> {error}")
    assert not problems, "\n".join(problems)


def test_inline_commands_name_real_commands_and_flags():
    problems = []
    for path in DOCS:
        text = prose(path)
        for match in INLINE.finditer(text.replace("\n", " ")):
            span = match.group(1)
            try:
                check_inline(span)
            except AssertionError as error:
                problems.append(f"{path.name}:{text.count(chr(10), 0, match.start()) + 1}: `{span}`: {error}")
    assert not problems, "\n".join(problems)


def test_flags_and_config_keys_in_running_text_exist():
    """`--flag` spans name an option of some proformer command (or benchmark script); spans such as
    `data.split=hash:0.9` or `train.optimizer` name a real config key (any value: prose has
    placeholders)."""
    from proformer.config import run_preset

    options, problems = every_option() | set(OTHER_FLAGS), []
    config = run_preset("grid")
    for path in DOCS:
        text = prose(path)
        for span in re.findall(r"`(--[a-z][^`]*)`", text):
            problems += [f"{path.name}: `{span}`: no command takes {flag}"
                         for flag in re.findall(r"--[a-z][a-z0-9-]*", span) if flag not in options]
            for setting in re.findall(r"--set\s+(\S+=\S+)", span):
                problems += unknown_key(config, setting, f"{path.name}: `{span}`")
        for key in CONFIG_KEY.findall(text):
            problems += unknown_key(config, f"{key}=0", f"{path.name}: `{key}`")
    assert not problems, "\n".join(problems)


def test_ci_runs_the_readme_install_and_test_commands():
    """.ci/run installs as the README's set-up block does and runs its test command, exactly."""
    ci = (ROOT / ".ci" / "run").read_text()
    ci_installs = [[w for w in words if w != "--quiet"] for _, words in shell_commands(ci) if words[:2] == ["pip", "install"]]
    readme_installs = [words for _, words in shell_commands(find_block("README.md: pip install torch==2.13.0 &&").text)
                       if words[0] == "pip"]
    assert ci_installs == readme_installs
    test_command = find_block("README.md: python -m pytest").text.strip()
    assert test_command in ci.splitlines()


def test_the_quickstart_report_suggests_a_command_that_parses():
    from proformer.config import run_preset
    from proformer.quickstart import _report_markdown

    metrics = {"source": "built-in", "n_train_rows": 20_000, "n_validation": 2_000, "n_test": 2_000,
               "model": run_preset("grid").model.to_dict(), "epochs": 3, "best_epoch": 3,
               "validation_pearson": 0.79, "test_pearson": 0.80, "test_spearman": 0.78, "noise_ceiling": 0.89,
               "fraction_of_ceiling": 0.9, "seconds": {"total": 169.0}}
    commands = INLINE.findall(_report_markdown(metrics))
    assert commands
    for command in commands:
        parse_proformer(shlex.split(command)[1:])


@pytest.mark.parametrize("line, error", [
    ("proformer prepare-atac --fasta g.fa --signal s.bw --peaks p.bed --out o", "invalid choice: 'prepare-atac'"),
    ("proformer quickstart --set n=100000", "unknown key 'n'"),
    ("proformer train --data d --out r --set dimm=64", "unknown key 'dimm'"),
    ("proformer train --data d --out r --set dim=wide", "dim"),
    ("proformer predict --model r --input i --out o --destandardize", "unrecognized arguments: --destandardize"),
    ("proformer train --preset dream2023 --out r", "not a preset"),
    ("proformer sweep --grid poster-yeas --out o", "not a built-in grid"),
    ("pip install -e .[gpu]", "[gpu] is not in pyproject.toml"),
    ("pip install torch==2.1.0", ".ci/run installs torch==2.13.0"),
    ("python benchmarks/bench_encode.py --rows 5", "takes no --rows"),
    ("python -m pytest -m slowest", "not registered"),
    ("wget https://example.org/file", "not a command the docs test knows"),
])
def test_the_checks_catch_drift(line, error):
    """The checks above are not vacuous: each of these stale lines fails with a message that says why."""
    (_, words), = shell_commands(line)
    with pytest.raises(AssertionError, match=re.escape(error)):
        check_command(words)


@pytest.mark.parametrize("span, error", [
    ("proformer prepare-atac --fasta hg38.fa ...", "no command 'prepare-atac'"),
    ("proformer quickstart --set n=...", "unknown key 'n'"),
    ("proformer atac prepare --fasta FA --max-n 0.1", "--max-n is not an option of proformer atac prepare"),
])
def test_the_inline_check_catches_drift(span, error):
    with pytest.raises(AssertionError, match=re.escape(error)):
        check_inline(span)


def test_the_python_check_catches_a_renamed_import_or_keyword():
    for code, error in [("from proformer.model import Proformr\n", "has no Proformr"),
                        ("from proformer.data.synthetic import simulate_library\nsimulate_library(10, sed=0)\n",
                         "unexpected keyword argument 'sed'"),
                        ("import proformer.predict\nproformer.predict.nothing_here()\n", "has no nothing_here")]:
        with pytest.raises(AssertionError, match=error):
            check_api(Block("example.md", 1, "python", code))


@pytest.mark.parametrize("block", blocks("python"), ids=str)
def test_python_blocks_import_and_call_the_real_api(block):
    try:
        check_api(block)
    except AssertionError as error:
        pytest.fail(f"{block}: {error}", pytrace=False)


@pytest.mark.parametrize("block", blocks("yaml"), ids=str)
def test_yaml_blocks_load(block, tmp_path):
    """A sweep grid (it has rows/columns or cells) loads with load_grid, a tune search space (in
    docs/tune.md) with load_space and a run whose keys it sets, anything else is a run config."""
    import yaml

    from proformer.config import load_run_config
    from proformer.experiments.grids import load_grid
    from proformer.experiments.tune import load_space

    path = tmp_path / "block.yaml"
    path.write_text(block.text)
    document = yaml.safe_load(block.text)
    try:
        if {"rows", "cells"} & set(document):
            grid = load_grid(path)
            assert len(grid.cells) >= 1
        elif block.path.endswith("docs/tune.md"):
            space = load_space(path)
            first = {key: spec["choices"][0] if "choices" in spec else spec["low"] for key, spec in space.items()}
            load_run_config(overrides=[f"{key}={value}" for key, value in first.items()])
        else:
            load_run_config(str(path))
    except ValueError as error:
        pytest.fail(f"{block}: {error}", pytrace=False)


def test_every_block_is_run_or_listed_with_the_reason_it_is_not():
    """A bash or python block is in RUN or in NOT_RUN (a new block fails until it is listed);
    each key names exactly one block, and no key is stale."""
    for key in [*RUN, *NOT_RUN]:
        find_block(key)
    assert not set(RUN) & set(NOT_RUN)
    assert all(reason.strip() for reason in NOT_RUN.values())
    listed = [*RUN, *NOT_RUN]
    unlisted = [f"{b} {b.key!r}" for b in BLOCKS
                if b.lang in ("bash", "python") and not any(b.key.startswith(key) for key in listed)]
    assert not unlisted, "blocks in neither RUN nor NOT_RUN (tests/test_docs.py):\n" + "\n".join(unlisted)


def test_every_block_has_a_language_this_test_checks():
    unknown = [str(b) for b in BLOCKS if b.lang not in ("bash", "python", "yaml", "")]
    assert not unknown, f"blocks in a language tests/test_docs.py does not check (add a check): {unknown}"


@pytest.mark.parametrize("key", list(RUN))
def test_block_runs(key, workspace):
    workspace(key)


def test_the_readme_states_no_timing_or_count_of_its_own():
    """Figures live in docs/benchmarks.md's block, written by benchmarks/readme_figures.py."""
    text = (ROOT / "README.md").read_text()
    stale = re.findall(r"\d[\d,]* tests (?:passed|collected)|passed in \d+ s|took \d+ min|\d+ min \d+ s|"
                       r"Pearson r (?:was|of) 0\.\d", text)
    assert not stale, f"the README states figures itself: {stale}; put them in docs/benchmarks.md's block"
    assert "docs/benchmarks.md#the-readmes-figures" in text


def test_the_test_count_in_docs_is_the_suites(request):
    """The count docs/benchmarks.md states is the number of tests this (whole, default) run holds."""
    config = request.config
    whole = (config.args_source == pytest.Config.ArgsSource.TESTPATHS and not config.option.keyword
             and config.option.markexpr == "not slow")
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    block = text.split(FIGURES_START, 1)[1].split(FIGURES_END, 1)[0]
    found = re.search(r"^\| tests in the default suite \| (?P<selected>[\d,]+) tests", block, re.MULTILINE)
    assert found, "docs/benchmarks.md's figures block states no test count: run python benchmarks/readme_figures.py"
    if not whole:
        pytest.skip("the count is compared when the whole default suite runs (python -m pytest)")
    stated = int(found.group("selected").replace(",", ""))
    assert stated == len(request.session.items), (
        f"docs/benchmarks.md says {stated:,} tests, the suite has {len(request.session.items):,}: run "
        f"python benchmarks/readme_figures.py --count")
