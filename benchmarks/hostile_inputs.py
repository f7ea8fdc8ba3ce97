"""Replay the hostile cases (bad input, faults, misuse; outputs and run directories) against the real CLI.

Builds a tiny dataset (tests/fixtures/dream_train.tsv, 400 rows) and a tiny trained run (dim 8, one
block, one epoch) in a temporary folder, then runs each case as ``python -m proformer.cli ...`` in
a subprocess with a timeout and records: the exit code, whether stderr holds a ``Traceback``, the
last stderr line, whether it finished in time, and whether it met its expectation:

- ``error``: a non-zero exit, no traceback, finished in time (bad input must be refused cleanly);
- ``ok``: exit 0, no traceback;
- ``clean``: either, as long as there is no traceback and it finished in time;
- files listed as ``keep`` must be byte-identical afterwards (nothing lost);
- an optional ``check(result) -> str | None`` adds a case-specific condition (None: fine).

Prints a Markdown table, the failures by kind (data loss: a kept file changed; hangs; tracebacks;
silently wrong or unclear: a case's own check failed), and exits 1 if any case fails::

    python benchmarks/hostile_inputs.py [--keep] [--only SUBSTRING]

Cases that need a non-root user (an unreadable file, a read-only folder) are skipped as root; the
test suite covers them there too (tests/conftest.py: ``unreadable`` raises the OS's PermissionError
from ``open``, ``read_only_dir`` mounts a read-only tmpfs).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "fixtures"
TRAIN_TSV = DATA / "dream_train.tsv"
MINI = DATA / "dream_mini"
TRUTH = DATA / "dream_test_truth.tsv"
#: The real DREAM 2022 folder (71,103 test rows), where this checkout has one: score's TSV checks
#: (sequence column, duplicates, overflow) need the full-size test set.
DREAM = ROOT.parent / "shared" / "data" / "dream2022"
TINY = ["dim=8", "heads=1", "blocks=1", "readout=4", "kmer=3", "dropout=0", "epochs=1", "batch_size=64",
        "data.split=hash:0.8", "train.accelerator=cpu"]
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def sets(*overrides: str) -> list[str]:
    return [part for value in overrides for part in ("--set", value)]


def cli(*args, stdin: str | None = None, timeout: float = 120, cwd: Path | None = None) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    start = time.time()
    try:
        done = subprocess.run([sys.executable, "-m", "proformer.cli", *map(str, args)], input=stdin,
                              capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, check=False)
        return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr, "in_time": True,
                "seconds": time.time() - start}
    except subprocess.TimeoutExpired as expired:
        err = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else (expired.stderr or "")
        return {"rc": None, "stdout": "", "stderr": err, "in_time": False, "seconds": time.time() - start}


def shell(command: str, timeout: float = 120) -> dict:
    start = time.time()
    try:
        done = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
        return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr, "in_time": True,
                "seconds": time.time() - start}
    except subprocess.TimeoutExpired:
        return {"rc": None, "stdout": "", "stderr": "", "in_time": False, "seconds": time.time() - start}


def digest(path: Path) -> str | None:
    if path.is_dir():
        return "dir:" + ",".join(f"{p.relative_to(path)}={digest(p)}" for p in sorted(path.rglob("*")) if p.is_file())
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@dataclasses.dataclass
class Case:
    command: str
    name: str
    run: Callable[[], dict]
    expect: str = "error"  # error | ok | clean
    keep: tuple = ()
    check: Callable[[dict], str | None] | None = None
    skip: str | None = None


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:140] if lines else ""


# -- the fixture ---------------------------------------------------------------------------------


def build(root: Path) -> dict:
    p = {"root": root, "tsv": root / "train.tsv", "data": root / "data", "run": root / "run"}
    shutil.copy(TRAIN_TSV, p["tsv"])
    for step in (cli("prepare", p["tsv"], "--out", p["data"], "--no-progress", timeout=300),
                 cli("train", "--data", p["data"], "--out", p["run"], "--no-progress", *sets(*TINY), timeout=600)):
        if step["rc"] != 0:
            sys.exit(f"building the fixture failed:\n{step['stderr'][-3000:]}")
    lines = TRAIN_TSV.read_text().splitlines()
    p["rows"] = lines
    p["seqs"] = [line.split("\t")[0] for line in lines]
    # A second, different dataset (for --resume --data OTHER).
    other = root / "other.tsv"
    other.write_text("\n".join(lines[:300]) + "\n")
    p["other"] = root / "other_data"
    step = cli("prepare", other, "--out", p["other"], "--no-progress", timeout=300)
    if step["rc"] != 0:
        sys.exit(f"preparing the second dataset failed:\n{step['stderr'][-3000:]}")
    return p


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def copy_dataset(p: dict, name: str, change: Callable[[Path], None]) -> Path:
    target = p["root"] / name
    shutil.copytree(p["data"], target)
    change(target)
    return target


def copy_run(p: dict, name: str, change: Callable[[Path], None]) -> Path:
    target = p["root"] / name
    shutil.copytree(p["run"], target)
    change(target)
    return target


def set_targets(value: float) -> Callable[[Path], None]:
    def change(directory: Path) -> None:
        targets = np.load(directory / "targets.npy")
        targets = targets.astype(np.float32 if targets.dtype == np.float16 else targets.dtype)
        targets.flat[3] = value
        np.save(directory / "targets.npy", targets)
    return change


def two_trains(p: dict) -> dict:
    out = p["root"] / "twice"
    command = [sys.executable, "-m", "proformer.cli", "train", "--data", str(p["data"]), "--out", str(out),
               "--no-progress", *sets(*TINY)]
    start = time.time()
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = []
    for proc in (first, second):
        try:
            _, err = proc.communicate(timeout=300)
            results.append((proc.returncode, err))
        except subprocess.TimeoutExpired:
            proc.kill()
            results.append((None, ""))
    codes = [rc for rc, _ in results]
    err = "\n".join(e for _, e in results)
    both = all(rc == 0 for rc in codes)
    return {"rc": max((c for c in codes if c is not None), default=None), "stdout": "", "stderr": err,
            "in_time": None not in codes, "seconds": time.time() - start,
            "extra": "both exited 0" if both else None}


# -- the cases -----------------------------------------------------------------------------------


def cases(p: dict) -> list[Case]:
    r = p["root"]
    seqs, rows, run, data = p["seqs"], p["rows"], p["run"], p["data"]
    body = "\n".join(seqs[:20]) + "\n"
    out = r / "out"
    out.mkdir(exist_ok=True)
    victim = write(r / "victim.txt", body)
    existing = write(r / "existing_predictions.tsv", "sequence\tprediction\nAAAA\t1.0\n")
    a_dir = r / "a_directory"
    a_dir.mkdir(exist_ok=True)
    unreadable = write(r / "unreadable.txt", body)
    if not AS_ROOT:
        unreadable.chmod(0)
    root_skip = "runs as root: permissions are not enforced" if AS_ROOT else None

    def predict(name: str, text: str | bytes, *extra, expect="error", check=None, keep=()) -> Case:
        path = write(r / "inputs" / f"{name.replace(' ', '_')}.txt", text)
        target = out / f"{name.replace(' ', '_')}.tsv"
        return Case("predict", name, lambda: cli("predict", "--model", run, "--input", path, "--out", target,
                                                  "--no-progress", *extra), expect, keep, check)

    def rows_kept(result: dict, n: int = 20, name: str = "") -> str | None:
        if result["rc"] != 0:
            return None  # refused: fine
        path = out / f"{name.replace(' ', '_')}.tsv"
        got = [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
        values = [line for line in got if not line.startswith(("sequence", "id\t"))]
        return None if len(values) == n else f"{len(values)} predictions for {n} input lines"

    def prep(name: str, text: str | bytes, *extra, expect="error", check=None, suffix=".tsv") -> Case:
        path = write(r / "inputs" / f"prep_{name.replace(' ', '_')}{suffix}", text)
        return Case("prepare", name, lambda: cli("prepare", path, "--out", r / "prep" / name.replace(" ", "_"),
                                                  "--no-progress", *extra), expect, (), check)

    def train(name: str, *args, expect="error", keep=(), check=None, data_dir=None) -> Case:
        return Case("train", name, lambda: cli("train", "--data", data_dir or data, "--out",
                                                r / "runs" / name.replace(" ", "_").replace("=", "-"),
                                                "--no-progress", *args, timeout=300), expect, keep, check)

    def mentions(*words: str) -> Callable[[dict], str | None]:
        return lambda res: None if any(w.lower() in res["stderr"].lower() for w in words) else \
            f"stderr names none of {words}"

    bom = "\ufeff" + body
    lower = seqs[0].lower() + "\n" + "\n".join(seqs[1:20]) + "\n"
    iupac = seqs[0][:30] + "R" + seqs[0][31:] + "\n" + "\n".join(seqs[1:20]) + "\n"
    truth = TRUTH.read_text().splitlines()
    shuffled = truth[:]
    random.Random(0).shuffle(shuffled)
    broken_config = lambda run_dir: (run_dir / "config.json").write_text(
        json.dumps({k: v for k, v in json.loads((run_dir / "config.json").read_text()).items() if k != "model"}))
    resume_run = r / "resume_run"
    if not resume_run.exists():
        shutil.copytree(run, resume_run)
    weights_only = r / "weights_run"
    if not weights_only.exists():
        shutil.copytree(run, weights_only)
    no_dream = None if (DREAM / "test_sequences.txt").exists() else f"no DREAM 2022 folder at {DREAM}"

    def full_tsv(name: str, shuffle: bool = False, duplicate: bool = False, scale: float = 1.0) -> Path:
        path = r / f"score_{name}.tsv"
        if path.exists():
            return path
        sequences = (DREAM / "test_sequences.txt").read_text().split()
        values = np.random.default_rng(0).normal(size=len(sequences))
        for key, value in json.loads((DREAM / "public_leaderboard" / "ground.json").read_text()).items():
            values[int(key)] += value  # correlated with the truth, so r is well away from 0
        values = values * scale
        if shuffle:
            order = np.random.default_rng(1).permutation(len(sequences))
            sequences = [sequences[i] for i in order]
        if duplicate:
            sequences = sequences[:-1] + sequences[:1]
        path.write_text("".join(f"{seq}\t{value!r}\n" for seq, value in zip(sequences, values.tolist())))
        return path

    ground = json.loads((MINI / "public_leaderboard" / "ground.json").read_text())
    submission = write(r / "submission.json", json.dumps({k: v + 0.1 * (i % 5) for i, (k, v) in
                                                          enumerate(ground.items())}))
    grid = lambda name, text: write(r / "grids" / f"{name}.yaml", text)
    tiny_set = "[" + ", ".join(TINY) + "]"

    return [
        # prepare
        prep("BOM first line", "\ufeff" + "\n".join(rows) + "\n", expect="clean",
             check=lambda res: None if res["rc"] == 0 else mentions("byte-order", "BOM")(res)),
        prep("lowercase first line", rows[0].lower() + "\n" + "\n".join(rows[1:]) + "\n", expect="clean"),
        prep("M in a sequence", rows[0][:20] + "M" + rows[0][21:] + "\n" + "\n".join(rows[1:]) + "\n"),
        prep("1_000 as a target", seqs[0] + "\t1_000\n" + "\n".join(rows[1:]) + "\n"),
        prep("full-width digit target", seqs[0] + "\t\uff11\n" + "\n".join(rows[1:]) + "\n"),
        prep("trim 100,100", "\n".join(rows) + "\n", "--trim", "100,100"),
        prep("binary .txt (gzip bytes)", b"\x1f\x8b\x08\x00\xff\xfe\x00\x01" * 64, suffix=".txt",
             check=mentions("prep_binary")),
        prep("empty file", ""),
        Case("prepare", "directory as input", lambda: cli("prepare", a_dir, "--out", r / "prep" / "dir",
                                                         "--no-progress"),
             check=lambda res: "said 'not found'" if "not found" in res["stderr"].lower() else None),
        Case("prepare", "unreadable input", lambda: cli("prepare", unreadable, "--out", r / "prep" / "unreadable",
                                                       "--no-progress"), skip=root_skip),
        # predict
        predict("BOM first line", bom, expect="clean", check=lambda res: rows_kept(res, name="BOM first line")),
        predict("lowercase first line", lower, expect="clean",
                check=lambda res: rows_kept(res, name="lowercase first line")),
        predict("IUPAC first line", iupac, expect="clean", check=lambda res: rows_kept(res, name="IUPAC first line")),
        predict("M in input", seqs[0][:40] + "M" + seqs[0][41:] + "\n" + body),
        predict("empty FASTA record", ">a\n" + seqs[0] + "\n>b\n>c\n" + seqs[1] + "\n"),
        predict("header-only FASTA", ">only\n"),
        predict("5000-nt sequence", "ACGT" * 1250 + "\n" + body, expect="clean",
                check=lambda res: None if res["rc"] != 0 or res["stderr"].strip() else "cut without notice"),
        predict("shorter than the flanks", "ACG\n"),
        Case("predict", "--input X --out X", lambda: cli("predict", "--model", run, "--input", victim, "--out", victim,
                                                         "--no-progress"), keep=(victim,)),
        Case("predict", "failed predict keeps --out", lambda: cli("predict", "--model", run, "--input",
                                                                  write(r / "inputs" / "bad.txt", "NOTDNA!\n"),
                                                                  "--out", existing, "--no-progress"),
             keep=(existing,)),
        Case("predict", "--batch-size -1", lambda: cli("predict", "--model", run, "--input", victim, "--out",
                                                       out / "bs-1.tsv", "--batch-size", "-1", "--no-progress")),
        Case("predict", "--batch-size 0", lambda: cli("predict", "--model", run, "--input", victim, "--out",
                                                      out / "bs0.tsv", "--batch-size", "0", "--no-progress")),
        Case("predict", "--input DIR", lambda: cli("predict", "--model", run, "--input", a_dir, "--out",
                                                   out / "dir.tsv", "--no-progress")),
        Case("predict", "--out DIR", lambda: cli("predict", "--model", run, "--input", victim, "--out", a_dir,
                                                 "--no-progress")),
        Case("predict", "--device cuda without CUDA", lambda: cli("predict", "--model", run, "--input", victim,
                                                                  "--out", out / "cuda.tsv", "--device", "cuda",
                                                                  "--no-progress"),
             skip="CUDA is available here" if _has_cuda() else None),
        Case("predict", "--out - (stdout)", lambda: cli("predict", "--model", run, "--input", victim, "--out", "-",
                                                        "--no-progress", cwd=out), expect="ok",
             check=lambda res: "wrote a file named '-'" if (out / "-").exists() else
             (None if len(res["stdout"].splitlines()) >= 20 else "fewer than 20 lines on stdout")),
        Case("predict", "truncated weights.safetensors", lambda: cli(
            "predict", "--model", copy_run(p, "truncated_run", lambda d: (d / "weights.safetensors").write_bytes(
                (d / "weights.safetensors").read_bytes()[:100])), "--input", victim, "--out", out / "trunc.tsv",
            "--no-progress"), check=mentions("weights.safetensors")),
        Case("predict", "config.json without model", lambda: cli(
            "predict", "--model", copy_run(p, "no_model_run", broken_config), "--input", victim, "--out",
            out / "nomodel.tsv", "--no-progress"), check=mentions("config.json")),
        Case("predict", "unreadable input", lambda: cli("predict", "--model", run, "--input", unreadable, "--out",
                                                        out / "unreadable.tsv", "--no-progress"), skip=root_skip),
        # train
        train("lr=inf", *sets(*TINY, "train.lr=inf")),
        train("lr=nan", *sets(*TINY, "train.lr=nan")),
        train("eps=0", *sets(*TINY, "train.eps=0")),
        train("mask_loss_weight=nan", *sets(*TINY, "train.mask_loss_weight=nan")),
        train("NaN target", *sets(*TINY), data_dir=copy_dataset(p, "nan_data", set_targets(float("nan")))),
        train("1e30 target", *sets(*TINY), data_dir=copy_dataset(p, "huge_data", set_targets(1e30))),
        train("data.head=200", *sets(*TINY, "data.head=200")),
        train("kmer=200", *sets(*TINY, "kmer=200")),
        train("seed=-1", *sets(*TINY, "train.seed=-1"), check=mentions("seed")),
        train("members=0", *sets(*TINY, "train.members=0"), check=mentions("members")),
        train("members=1.5", *sets(*TINY, "train.members=1.5"), check=mentions("members")),
        train("members=2 with folds:3", *sets(*TINY, "train.members=2", "data.split=folds:3"),
              check=mentions("folds:3")),
        train("devices=0", *sets(*TINY, "devices=0")),
        train("devices=abc", *sets(*TINY, "devices=abc")),
        train("clip_value=-1", *sets(*TINY, "clip_value=-1")),
        train("max_time=-1", *sets(*TINY, "max_time=-1")),
        train("config model: 5", "--config", write(r / "configs" / "model5.yaml", "model: 5\n"), *sets(*TINY)),
        train("--config DIR", "--config", a_dir, *sets(*TINY)),
        train("duplicate YAML keys", "--config", write(r / "configs" / "dup.yaml",
                                                       "model:\n  dim: 8\n  dim: 16\n"), *sets(*TINY)),
        Case("train", "--resume --data OTHER", lambda: cli("train", "--resume", "--data", p["other"], "--out",
                                                           resume_run, "--no-progress", *sets(*TINY), timeout=300),
             keep=(resume_run,)),
        Case("train", "--resume --set dim=24", lambda: cli("train", "--resume", "--data", data, "--out", resume_run,
                                                           "--no-progress", *sets(*TINY, "dim=24"), timeout=300),
             keep=(resume_run,)),
        Case("train", "two trains into one --out", lambda: two_trains(p), expect="clean",
             check=lambda res: res.get("extra")),
        Case("train", "--out is a file", lambda: cli("train", "--data", data, "--out", victim, "--no-progress",
                                                     *sets(*TINY)), keep=(victim,)),
        Case("train", "truncated codes.npy", lambda: cli(
            "train", "--data", copy_dataset(p, "trunc_codes", lambda d: (d / "codes.npy").write_bytes(
                (d / "codes.npy").read_bytes()[:500])), "--out", r / "runs" / "trunc_codes", "--no-progress",
            *sets(*TINY)), check=mentions("codes.npy")),
        Case("train", "symbol code out of range", lambda: cli(
            "train", "--data", copy_dataset(p, "bad_codes", _bad_codes), "--out", r / "runs" / "bad_codes",
            "--no-progress", *sets(*TINY))),
        Case("train", "corrupt meta.json", lambda: cli(
            "train", "--data", copy_dataset(p, "bad_meta", lambda d: (d / "meta.json").write_text("{not json")),
            "--out", r / "runs" / "bad_meta", "--no-progress", *sets(*TINY)), check=mentions("meta.json")),
        # score
        Case("score", "shuffled TSV", lambda: cli("score", full_tsv("shuffled", shuffle=True), "--data-dir", DREAM),
             check=mentions("sequence column"), skip=no_dream),
        Case("score", "duplicated rows", lambda: cli("score", full_tsv("dup", duplicate=True), "--data-dir", DREAM),
             check=mentions("duplicate", "does not match"), skip=no_dream),
        Case("score", "values near 1e301", lambda: cli("score", full_tsv("huge", scale=1e301), "--data-dir", DREAM),
             expect="clean", skip=no_dream,
             check=lambda res: "RuntimeWarning" if "RuntimeWarning" in res["stderr"] else
             (None if res["rc"] != 0 or res["stdout"] == cli("score", full_tsv("plain"), "--data-dir", DREAM)["stdout"]
              else "scores differ from the same predictions at scale 1 (r does not depend on scale)")),
        Case("score", "--truth shuffled", lambda: cli("score", full_tsv("good"), "--data-dir", DREAM, "--split",
                                                      "private", "--truth", full_tsv("shuffled", shuffle=True)),
             check=mentions("sequence column"), skip=no_dream),
        Case("score", "score DIR", lambda: cli("score", a_dir, "--data-dir", MINI)),
        Case("score", "score | head", lambda: shell(
            f"{sys.executable} -m proformer.cli score {submission} --data-dir {MINI} | head -n 0"), expect="clean"),
        Case("score", "unreadable input", lambda: cli("score", unreadable, "--data-dir", MINI), skip=root_skip),
        *output_cases(p, body),
        # export
        Case("export", "--onnx RUN/weights.safetensors", lambda: cli("export", "--model", weights_only, "--onnx",
                                                                     weights_only / "weights.safetensors"),
             keep=(weights_only / "weights.safetensors",)),
        Case("export", "--onnx DIR", lambda: cli("export", "--model", run, "--onnx", a_dir)),
        # sweep
        Case("sweep", "cell id '..'", lambda: cli("sweep", "--grid", grid("dotdot", (
            f"preset: grid\nset: {tiny_set}\ncells:\n  - {{id: '..', set: [readout=8]}}\n")), "--data", data,
            "--out", r / "sweeps" / "dotdot", "--no-progress", timeout=300)),
        Case("sweep", "cells: []", lambda: cli("sweep", "--grid", grid("empty", "preset: grid\ncells: []\n"),
                                               "--data", data, "--out", r / "sweeps" / "empty", "--no-progress")),
        Case("sweep", "duplicate YAML keys", lambda: cli("sweep", "--grid", grid("dup", (
            "preset: grid\ncells:\n  - {id: a, set: [readout=pool]}\npreset: atac\n")), "--data", data,
            "--out", r / "sweeps" / "dup", "--no-progress")),
        Case("sweep", "cell with kmer=200", lambda: cli("sweep", "--grid", grid("kmer", (
            f"preset: grid\nset: {tiny_set}\ncells:\n  - {{id: a, set: [kmer=200]}}\n")), "--data", data,
            "--out", r / "sweeps" / "kmer", "--no-progress", timeout=300), expect="clean",
             check=lambda res: None if res["rc"] != 0 or "fail" in (res["stdout"] + res["stderr"]).lower()
             else "kmer=200 cell reported as done"),
        # model
        Case("model", "--set dim=abc", lambda: cli("model", "--preset", "grid", "--set", "dim=abc")),
        Case("model", "--set devices=0", lambda: cli("model", "--preset", "grid", "--set", "devices=0")),
        Case("model", "preset dream2022 (train lists it)", lambda: cli("model", "--preset", "dream2022"), expect="ok"),
        Case("model", "unknown preset", lambda: cli("model", "--preset", "nope")),
        # bench
        Case("bench", "--batch-size 0", lambda: cli("bench", "predict", "--preset", "grid", "--batch-size", "0",
                                                    "--steps", "1")),
        Case("bench", "--batch-size -1", lambda: cli("bench", "predict", "--preset", "grid", "--batch-size", "-1",
                                                     "--steps", "1")),
        Case("bench", "preset proformer-plus (train lists it)", lambda: cli(
            "bench", "predict", "--preset", "proformer-plus", "--set", "dim=8", "--set", "blocks=1", "--batch-size",
            "2", "--steps", "1"), expect="ok"),
        Case("bench", "--device cuda without CUDA", lambda: cli("bench", "predict", "--preset", "grid", "--device",
                                                                "cuda", "--steps", "1"),
             skip="CUDA is available here" if _has_cuda() else None),
    ]


def output_cases(p: dict, body: str) -> list[Case]:
    """The outputs and run directories of issue 25: what is there is written through or kept, never
    replaced; a bad run directory or option is one line."""
    r, run = p["root"] / "outputs", p["run"]
    r.mkdir(exist_ok=True)
    fasta = write(r / "seqs.fa", "".join(f">s{i}\n{line}\n" for i, line in enumerate(body.split()[:5])))
    inputs = write(r / "seqs.txt", body)
    table = write(r / "target.tsv", "old\n")
    (r / "link.tsv").unlink(missing_ok=True)
    (r / "link.tsv").symlink_to(table)
    design_target = write(r / "design_target.tsv", "old\n")
    (r / "design_link.tsv").unlink(missing_ok=True)
    (r / "design_link.tsv").symlink_to(design_target)
    for name in ("loop_a", "loop_b"):
        (r / name).unlink(missing_ok=True)
    (r / "loop_a").symlink_to(r / "loop_b")
    (r / "loop_b").symlink_to(r / "loop_a")
    device, device_skip = r / "full", None
    if not device.exists():
        try:
            os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # /dev/full's numbers
        except (PermissionError, OSError) as error:
            device_skip = f"cannot mknod here ({error.strerror})"
    earlier = r / "ism_folder"
    (earlier / "logos").mkdir(parents=True, exist_ok=True)
    for i in range(3):
        write(earlier / "logos" / f"00{i}_earlier.png", b"old")

    def run_copy(name: str, change: Callable[[dict], None]) -> Path:
        target = r / name
        if not target.exists():
            shutil.copytree(run, target)
            config = json.loads((target / "config.json").read_text())
            change(config)
            (target / "config.json").write_text(json.dumps(config))
        return target

    wide = run_copy("wide_run", lambda c: c["model"].update(dim=2 * c["model"]["dim"]))
    names = run_copy("names_run", lambda c: c["target"].update(names=["a", "b"]))
    layout = run_copy("layout_run", lambda c: c["layout"].update(pad="plastic"))
    other = run_copy("other_target_run", lambda c: c["target"].update(names=["other"]))
    pickled = r / "pickle_run"
    marker = r / "pickle_ran"
    if not pickled.exists():
        shutil.copytree(run, pickled)
        (pickled / "weights.safetensors").unlink()
        write(pickled / "weights.pt", b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    genome = r / "genome.fa.gz"
    if not genome.exists():
        import gzip
        genome.write_bytes(gzip.compress((">chr1\n" + "ACGT" * 200 + "\n").encode()))
    vcf = write(r / "variants.vcf", "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                                    "chr1\t400\t.\tT\tG\t.\t.\t.\n")
    stale = r / "stale.fa"
    if not stale.exists():
        write(stale, ">chr1\n" + "ACGT" * 200 + "\n")
        write(Path(str(stale) + ".fai"), "chr1\t800\t6\t800\t801\n")
        os.utime(Path(str(stale) + ".fai"), (1, 1))  # an index older than its FASTA
    first = body.split()[0]
    pairs = write(r / "pairs.tsv", f"id\tref_sequence\talt_sequence\nv\t{first}\t{first[:-1]}A\n")
    one_line = lambda res: None if len(res["stderr"].strip().splitlines()) == 1 else "not one line"

    def is_device(res: dict) -> str | None:
        return None if stat.S_ISCHR(os.lstat(device).st_mode) else "the device was replaced by a file"

    def link_kept(link: Path, target: Path) -> Callable[[dict], str | None]:
        def check(res: dict) -> str | None:
            if not link.is_symlink():
                return "the link was replaced"
            return None if target.read_text().startswith(("sequence", "id")) else "the link's target not written"
        return check

    def logos(res: dict) -> str | None:
        found = sorted(path.name for path in (earlier / "logos").glob("*.png"))
        return None if len(found) == 1 else f"{len(found)} logos for --top 1: {found}"

    def stdout_table(res: dict) -> str | None:
        return None if res["stdout"].startswith("sequence\t") else "standard output got no table"

    def no_code_ran(res: dict) -> str | None:
        if marker.exists():
            return "the pickle ran code"
        return "suggests weights_only=False" if "weights_only=False" in res["stderr"] else one_line(res)

    predict = lambda out, *extra: lambda: cli("predict", "--model", run, "--input", inputs, "--out", out,
                                              "--no-progress", *extra)
    model_error = lambda model: lambda: cli("predict", "--model", model, "--input", inputs, "--out",
                                            r / "never.tsv", "--no-progress")
    return [
        Case("predict", "--out a character device (/dev/full)", predict(device), check=is_device, skip=device_skip),
        Case("predict", "--out a symlink to a file", predict(r / "link.tsv"), expect="ok",
             check=link_kept(r / "link.tsv", table)),
        Case("predict", "--out a named pipe being read", lambda: shell(
            f"cd {r} && rm -f pipe got && mkfifo pipe && (cat pipe > got &) && {sys.executable} -m proformer.cli "
            f"predict --model {run} --input {inputs} --out pipe --no-progress && sleep 1 && test -p pipe && "
            f"head -c 9 got | grep -q sequence", timeout=120), expect="ok"),
        Case("predict", "--out a symlink to standard output", lambda: shell(
            f"cd {r} && ln -sf /dev/stdout to_stdout && {sys.executable} -m proformer.cli predict --model {run} "
            f"--input {inputs} --out to_stdout --no-progress"), expect="ok", check=stdout_table),
        Case("predict", "--out a symlink loop", predict(r / "loop_a"), check=one_line),
        Case("predict", "--input a symlink loop", lambda: cli("predict", "--model", run, "--input", r / "loop_a",
                                                               "--out", r / "never.tsv", "--no-progress"),
             check=lambda res: None if "loop" in res["stderr"] else "the loop is not named"),
        Case("design", "--out a symlink to a file", lambda: cli("design", "--model", run, "--input", fasta, "--target",
                                                              "high", "--max-edits", "1", "--out",
                                                              r / "design_link.tsv", "--no-progress"),
             expect="ok", check=lambda res: None if (r / "design_link.tsv").is_symlink() and
             design_target.read_text().startswith("id") else "the link was replaced or its target not written"),
        Case("ism", "into a folder of an earlier run", lambda: cli("ism", "--model", run, "--input", fasta, "--out",
                                                                  earlier, "--top", "1", "--no-progress"),
             expect="ok", check=logos),
        Case("attribute", "--steps 1000000", lambda: cli("attribute", "--model", run, "--input", fasta, "--out",
                                                        r / "attr", "--method", "integrated_gradients", "--steps",
                                                        "1000000", "--no-progress"), check=one_line),
        Case("predict", "config.json width != weights", model_error(wide), check=one_line),
        Case("predict", "config.json 2 target names, 1 target", model_error(names), check=one_line),
        Case("predict", "config.json pad 'plastic'", model_error(layout),
             check=lambda res: None if "config.json" in res["stderr"] else "the file is not named"),
        Case("predict", "weights.pt that runs code", model_error(pickled), check=no_code_ran),
        Case("design", "--oracle with other targets", lambda: cli("design", "--model", run, "--oracle", other,
                                                                 "--input", fasta, "--target", "high", "--max-edits",
                                                                 "1", "--out", r / "never.tsv", "--no-progress"),
             check=one_line),
        Case("prepare", "prepare FILE --out FILE", lambda: cli("prepare", inputs, "--out", inputs, "--no-progress"),
             keep=(inputs,), check=lambda res: None if "input" in res["stderr"] else "the input is not named"),
        Case("variant-effect", "plain-gzip genome", lambda: cli("variant-effect", "--model", run, "--vcf", vcf,
                                                               "--fasta", genome, "--out", r / "never.tsv",
                                                               "--no-progress"),
             check=lambda res: None if "bgzip" in res["stderr"] else "bgzip not named"),
        Case("variant-effect", "a .fai older than its FASTA", lambda: cli(
            "variant-effect", "--model", run, "--vcf", vcf, "--fasta", stale, "--out", r / "stale_effects.tsv",
            "--no-progress"), expect="clean", check=lambda res: None if "older" in res["stderr"] else
            "the stale index was used without a word"),
        Case("variant-effect", "--out a symlink to standard output", lambda: shell(
            f"cd {r} && ln -sf /dev/stdout effects_out && {sys.executable} -m proformer.cli variant-effect --model "
            f"{run} --pairs {pairs} --out effects_out --no-progress"), expect="ok",
             check=lambda res: None if res["stdout"].startswith("id\t") else "standard output got no table"),
    ]


def genome_cases(p: dict) -> list[Case]:
    """predict/evaluate along a genome (--fasta): bad intervals, regions, genomes and signals."""
    r = p["root"] / "genome"
    rng = random.Random(0)
    chrom1 = "".join(rng.choice("ACGT") for _ in range(5_000))
    fasta = write(r / "genome.fa", f">chr1\n{chrom1}\n>chr2\n{chrom1[:300]}\n")
    bad_fasta = write(r / "bad.fa", f">chr1\n{chrom1[:2_000]}@{chrom1[2_001:]}\n")
    existing = write(r / "existing.bedGraph", "chr1\t0\t1\t1.0\n")
    run, out = p["run"], r / "out.bedGraph"

    def predict(name: str, *extra, expect="error", keep=()) -> Case:
        return Case("predict --fasta", name, lambda: cli("predict", "--model", run, *extra, "--no-progress"), expect, keep)

    def bed(name: str, text: str | bytes) -> Path:
        return write(r / f"{name}.bed", text)

    return [
        predict("a whole genome as a bedGraph", "--fasta", fasta, "--out", out, expect="ok"),
        predict("BED interval end past any chromosome", "--fasta", fasta, "--bed",
                bed("huge", "chr1\t0\t99999999999999999999\n"), "--out", r / "o.tsv"),
        predict("BED with a negative start", "--fasta", fasta, "--bed", bed("negative", "chr1\t-5\t100\n"),
                "--out", r / "o.tsv"),
        predict("empty BED", "--fasta", fasta, "--bed", bed("empty", ""), "--out", r / "o.tsv"),
        predict("binary BED", "--fasta", fasta, "--bed", bed("binary", bytes(range(256)) * 4), "--out", r / "o.tsv"),
        predict("BED on a chromosome the genome lacks", "--fasta", fasta, "--bed", bed("chrom", "1\t0\t200\n"),
                "--out", r / "o.tsv"),
        predict("--region chr1:abc", "--fasta", fasta, "--region", "chr1:abc", "--out", out),
        predict("two overlapping regions", "--fasta", fasta, "--region", "chr1:1-1,000", "--region", "chr1:500-2,000",
                "--out", existing, keep=(existing,)),
        predict("a track named .txt", "--fasta", fasta, "--out", r / "track.txt"),
        predict("--stride 0", "--fasta", fasta, "--stride", "0", "--out", out),
        predict("a directory as the genome", "--fasta", r, "--out", existing, keep=(existing,)),
        predict("a genome with a non-DNA byte", "--fasta", bad_fasta, "--out", existing, keep=(existing,)),
        predict("--bed with --input", "--input", fasta, "--bed", bed("x", "chr1\t0\t200\n"), "--out", r / "o.tsv"),
        Case("evaluate --fasta", "a signal that is not a bigWig", lambda: cli(
            "evaluate", "--model", run, "--fasta", fasta, "--signal", fasta, "--no-progress")),
        Case("evaluate --fasta", "no --signal", lambda: cli("evaluate", "--model", run, "--fasta", fasta, "--no-progress")),
    ]


def _has_cuda() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def _bad_codes(directory: Path) -> None:
    codes = np.load(directory / "codes.npy")
    codes[0, 5] = 250
    np.save(directory / "codes.npy", codes)


# -- running -------------------------------------------------------------------------------------


def judge(case: Case, result: dict, before: dict) -> list[str]:
    problems = []
    if not result["in_time"]:
        problems.append("timed out")
    if "Traceback" in result["stderr"]:
        problems.append("traceback")
    if result["in_time"]:
        if case.expect == "error" and result["rc"] == 0:
            problems.append("exit 0 (should be refused)")
        if case.expect == "ok" and result["rc"] != 0:
            problems.append(f"exit {result['rc']} (should succeed)")
    for path, old in before.items():
        if digest(path) != old:
            problems.append(f"{path.name} changed")
    if case.check is not None and result["in_time"]:
        extra = case.check(result)
        if extra:
            problems.append(extra)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--only", help="run only cases whose command or name contains this")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="proformer-hostile-"))
    try:
        started = time.time()
        p = build(root)
        print(f"fixture built in {time.time() - started:.0f} s under {root}", file=sys.stderr)
        table = ["| # | command | case | exit | traceback | in time | last stderr line | result |",
                 "|---|---|---|---|---|---|---|---|"]
        failures, passed, skipped = [], 0, 0
        for i, case in enumerate(cases(p) + genome_cases(p), 1):
            if args.only and args.only not in f"{case.command} {case.name}":
                continue
            if case.skip:
                skipped += 1
                table.append(f"| {i} | {case.command} | {case.name} | - | - | - | - | skipped: {case.skip} |")
                continue
            before = {Path(path): digest(Path(path)) for path in case.keep}
            result = case.run()
            problems = judge(case, result, before)
            verdict = "pass" if not problems else "FAIL: " + "; ".join(problems)
            line = last_line(result["stderr"]).replace("|", "/")
            table.append(f"| {i} | {case.command} | {case.name} | {result['rc']} | "
                         f"{'yes' if 'Traceback' in result['stderr'] else 'no'} | "
                         f"{'yes' if result['in_time'] else 'NO'} | {line} | {verdict} |")
            print(f"{i:3d} {case.command} {case.name}: {verdict} ({result['seconds']:.1f} s)", file=sys.stderr)
            if problems:
                failures.append(f"{case.command} {case.name}: {'; '.join(problems)}")
            else:
                passed += 1
        print("\n".join(table))
        print(f"\n{passed + len(failures)} cases run, {passed} passed, {len(failures)} failed, {skipped} skipped"
              + (" (as root)" if AS_ROOT else ""))
        kinds = {"data loss": " changed", "hangs": "timed out", "tracebacks": "traceback"}
        counts = {kind: sum(word in failure for failure in failures) for kind, word in kinds.items()}
        counts["silently wrong or unclear"] = len(failures) - sum(counts.values())
        print(", ".join(f"{count} {kind}" for kind, count in counts.items()))
        for failure in failures:
            print(f"- FAIL {failure}")
        return 1 if failures else 0
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
