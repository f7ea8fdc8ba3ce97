"""The GPU check: one command that proves the CUDA path and measures it, in at most ~8 minutes.

    python benchmarks/gpu_check.py --out gpu_results

On a machine with one NVIDIA GPU (the project's is an H100 or H200) it runs, each step in its own
process under its own time limit (a step that hangs is killed and named, never waited on):

    dependencies  the Python packages the check needs, and which wheel to bring for a missing one
    cuda-tests    ``pytest -m cuda tests/test_cuda.py``: CUDA equals the CPU, bf16 training learns,
                  a run trained on the GPU predicts the same on the CPU, masks and shifts identical
    attention     every SDPA kernel and proformer's matmul path on the submitted model's attention
                  shape (key_dim 512), forward + backward in bf16: which kernels take it, how fast
    bench         ``proformer bench`` train and predict, fp32 and bf16, for grid d64,
                  grid d256/8/8/H32 and dream2022: sequences/s, the same dtype's measured matmul
                  peak, MFU, peak GPU memory
    compile       ``train.compile=true`` against eager, dream2022 bf16 training
    train         ``proformer prepare`` + ``proformer train --preset dream2022`` (bf16, 3 epochs) end to
                  end, with the data loader's time per batch against the training step's

and writes ``gpu_check.json`` and ``gpu_check.md`` (a table per step) to ``--out`` after every step,
atomically. The exit status is 0 when every step passed, 1 when one failed or ran out of time (the
last line names them), 2 for a usage error or missing dependency. The package need not be installed:
the repository's ``src`` is put on the path.

``--smoke`` runs the same steps with tiny models and data, on the CPU if there is no GPU: it is how
the test suite checks this script (tests/test_gpu_check.py), and a quick way to check a new machine.
``--data FILE`` trains on a DREAM-format file (``sequence<TAB>expression``) instead of a simulated
library of 50,000 DREAM-like rows (the default, so the check needs no download).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("dependencies", "cuda-tests", "attention", "bench", "compile", "train")
#: Seconds each step may take on one H100: limits, not estimates (the steps are expected to take
#: about half); their sum stays under the device's 10-minute command limit.
TIME_LIMITS = {"dependencies": 30, "cuda-tests": 120, "attention": 45, "bench": 120, "compile": 150, "train": 130}
#: Import name -> the wheel that provides it. ``lion_pytorch`` is only needed by optimizer=lion.
REQUIRED = {"torch": "torch", "numpy": "numpy", "scipy": "scipy", "yaml": "pyyaml", "lightning": "lightning",
            "torchmetrics": "torchmetrics", "matplotlib": "matplotlib", "pytest": "pytest",
            "pytest_timeout": "pytest-timeout"}
#: The DREAM 2022 training set's size: what one epoch of the full job is.
DREAM_TRAIN_ROWS = 6_739_258
#: The original's throughput: 4 x A100, about 4,740 s an epoch (docs/model.md).
ORIGINAL_SEQUENCES_PER_SECOND = 1_350


def missing_dependencies(required: dict[str, str] | None = None) -> list[str]:
    """The wheels (pip names) whose module cannot be imported here, in ``required``'s order
    (default :data:`REQUIRED`)."""
    required = REQUIRED if required is None else required
    return [wheel for module, wheel in required.items() if importlib.util.find_spec(module) is None]


# -- the parent: run each step in a child under a time limit, keep the results -----------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu_check.json and gpu_check.md (created)")
    parser.add_argument("--only", nargs="+", choices=STEPS, metavar="STEP",
                        help=f"run these steps only (default: all of {', '.join(STEPS)})")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny models and data, on the CPU when there is no GPU (checks the script, measures nothing)")
    parser.add_argument("--data", type=Path, help="a DREAM-format file to train on (default: a simulated library)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply every step's time limit (e.g. 2 on a slower GPU; default 1)")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)  # internal: run one step in this process
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error(f"--time-scale {args.time_scale}: must be > 0")
    if args.data is not None and not args.data.is_file():
        parser.error(f"--data {args.data}: no such file; give a DREAM-format file (sequence<TAB>expression) or leave it out")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.step:
        return run_step_here(args)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"gpu_check: cannot create --out {args.out}: {error.strerror}; choose another folder", file=sys.stderr)
        return 2
    missing = missing_dependencies()
    if missing:
        print(f"gpu_check: missing Python package(s): {', '.join(missing)}. Bring them as wheels "
              f"(pip download {' '.join(missing)}) and install them first", file=sys.stderr)
        return 2
    if not args.smoke and not cuda_available():
        print("gpu_check: no CUDA device visible to torch (torch.cuda.is_available() is False); run it on a GPU "
              "machine, or with --smoke to check the script on a CPU", file=sys.stderr)
        return 2
    steps = [step for step in STEPS if not args.only or step in args.only]
    report = {"machine": machine(), "smoke": args.smoke, "complete": False, "steps": {}}
    for step in steps:
        limit = TIME_LIMITS[step] * args.time_scale * (2 if args.smoke else 1)
        print(f"gpu_check: {step} (limit {limit:.0f} s) ...", flush=True)
        report["steps"][step] = run_child(step, args, limit)
        status = report["steps"][step]["status"]
        print(f"gpu_check: {step}: {status} in {report['steps'][step]['seconds']:.1f} s"
              + (f": {report['steps'][step]['error']}" if status != "passed" else ""), flush=True)
        write_report(report, args.out)
    report["complete"] = True
    write_report(report, args.out)
    failed = [step for step, result in report["steps"].items() if result["status"] != "passed"]
    if failed:
        print(f"gpu_check: FAILED: {', '.join(failed)} (see {args.out / 'gpu_check.md'})", file=sys.stderr)
        return 1
    print(f"gpu_check: all {len(steps)} steps passed; results in {args.out / 'gpu_check.md'}")
    return 0


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "cuda": torch.version.cuda, "gpu": None}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count)
    return info


def run_child(step: str, args: argparse.Namespace, limit: float, command: list[str] | None = None) -> dict:
    """Run one step in a child process (its own process group) and return its result.

    The child writes its result to a JSON file; a child that exits non-zero, writes nothing or
    outlives ``limit`` seconds is a failed step, with the end of what it printed. ``command``
    replaces the step's own command line (the tests use it to plant a hang).
    """
    result_file = args.out / f".{step}.result.json"
    result_file.unlink(missing_ok=True)
    if command is None:
        command = [sys.executable, str(Path(__file__).resolve()), "--step", step, "--out", str(args.out)]
        command += ["--smoke"] if args.smoke else []
        command += ["--data", str(args.data)] if args.data else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        try:
            code = child.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            code = None
        log.seek(0)
        tail = log.read()[-4000:]
    seconds = time.perf_counter() - start
    if code is None:
        return {"status": "timed out", "seconds": seconds, "error": f"still running after {limit:.0f} s, killed",
                "log_tail": tail}
    if code != 0 or not result_file.exists():
        last = next((line for line in reversed(tail.splitlines()) if line.strip()), "no output")
        return {"status": "failed", "seconds": seconds, "error": f"exit {code}: {last.strip()[:300]}", "log_tail": tail}
    result = json.loads(result_file.read_text())
    result_file.unlink()
    return {"status": "passed", "seconds": seconds, **result}


def write_report(report: dict, out: Path) -> None:
    """``gpu_check.json`` and ``gpu_check.md`` in ``out``, each replaced atomically."""
    for name, text in (("gpu_check.json", json.dumps(report, indent=2) + "\n"), ("gpu_check.md", markdown(report))):
        temporary = out / f".{name}.tmp"
        temporary.write_text(text)
        os.replace(temporary, out / name)


def markdown(report: dict) -> str:
    """The report as Markdown: the machine, one line per step, a table per measuring step."""
    m = report["machine"]
    gpu = f"{m['gpu']} ({m.get('gpu_memory_gib')} GiB)" if m.get("gpu") else "no GPU"
    lines = [f"# GPU check{' (smoke run: tiny models, nothing measured)' if report['smoke'] else ''}", "",
             f"Machine: {gpu}; torch {m['torch']} (CUDA {m['cuda']}), Python {m['python']}.", ""]
    if not report["complete"]:
        lines += ["**Incomplete: the check was still running or was stopped.**", ""]
    lines += ["| step | status | seconds | note |", "|---|---|---|---|"]
    for step, result in report["steps"].items():
        lines.append(f"| {step} | {result['status']} | {result['seconds']:.1f} | {_cell(result.get('error') or result.get('summary', ''))} |")
    for step, result in report["steps"].items():
        rows = result.get("rows")
        if rows:
            lines += ["", f"## {step}", "", *table(rows)]
    return "\n".join(lines) + "\n"


def table(rows: list[dict]) -> list[str]:
    """Markdown table lines of ``rows`` (dicts with the same keys; floats to 4 significant digits)."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(column)) for column in columns) + " |")
    return lines


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "/").replace("\n", " ")


# -- the child: one step, in this process ---------------------------------------------------------


def run_step_here(args: argparse.Namespace) -> int:
    result = STEP_FUNCTIONS[args.step](args)
    path = args.out / f".{args.step}.result.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(result, default=float))
    os.replace(temporary, path)
    return 0


def step_dependencies(args: argparse.Namespace) -> dict:
    import torch

    optional = {"lion_pytorch": "lion-pytorch (optimizer=lion only)", "onnxruntime": "onnxruntime (proformer export)"}
    absent = [wheel for module, wheel in optional.items() if importlib.util.find_spec(module) is None]
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("torch sees no CUDA device")
    return {"summary": "all required packages import" + (f"; optional, absent: {', '.join(absent)}" if absent else ""),
            "versions": {module: _version(module) for module in REQUIRED}}


def _version(module: str) -> str | None:
    try:
        return getattr(__import__(module), "__version__", None)
    except Exception as error:  # a module that is there but breaks on import is a finding, not a crash
        return f"import failed: {error}"


def step_cuda_tests(args: argparse.Namespace) -> dict:
    report = args.out / ".cuda-tests.xml"
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "tests/test_cuda.py", "-q", "-p", "no:cacheprovider",
               f"--junitxml={report}", "-o", "addopts="]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    counts = _junit_counts(report)
    report.unlink(missing_ok=True)
    print(completed.stdout[-3000:], completed.stderr[-2000:])
    if completed.returncode not in (0, 5):
        raise SystemExit(f"pytest -m cuda failed: {counts}")
    if not args.smoke and counts["passed"] == 0:
        raise SystemExit(f"no CUDA test ran: {counts}")
    return {"summary": f"{counts['passed']} passed, {counts['skipped']} skipped", **counts}


def _junit_counts(path: Path) -> dict:
    from xml.etree import ElementTree

    suite = ElementTree.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    total, failed = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    return {"passed": total - failed - skipped, "failed": failed, "skipped": skipped}


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def step_attention(args: argparse.Namespace) -> dict:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from proformer.model import model_preset
    from proformer.model.proformer import attention, matmul_attention

    device = _device()
    config = model_preset("dream2022")
    tokens = 2 * config.length + config.n_expression_heads
    batch = 4 if args.smoke else 128
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    shape = (batch, config.heads, tokens, config.key_dim)
    inputs = [torch.randn(shape, device=device, dtype=dtype, requires_grad=True) for _ in range(3)]
    upstream = torch.randn(shape, device=device, dtype=dtype)
    candidates = {"proformer (attention())": lambda: attention(*inputs), "matmul path": lambda: matmul_attention(*inputs),
                  "SDPA, its own choice": lambda: F.scaled_dot_product_attention(*inputs)}
    def forced(backend: SDPBackend) -> torch.Tensor:
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(*inputs)

    for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"):
        if hasattr(SDPBackend, name):
            candidates[f"SDPA {name.lower()}"] = functools.partial(forced, getattr(SDPBackend, name))
    rows = []
    for name, run in candidates.items():
        def step(run=run):
            for x in inputs:
                x.grad = None
            (run() * upstream).sum().backward()
        try:
            seconds = _best_time(step, device, repeats=2 if args.smoke else 10)
            rows.append({"kernel": name, "accepted": "yes", "forward+backward ms": 1000 * seconds})
        except RuntimeError as error:
            rows.append({"kernel": name, "accepted": "no: " + str(error).splitlines()[0][:120], "forward+backward ms": None})
    summary = f"shape (batch, heads, tokens, key_dim) = {shape}, {str(dtype).removeprefix('torch.')}"
    return {"summary": summary, "rows": rows}


def _best_time(step, device: str, repeats: int, warmup: int = 2) -> float:
    import torch

    for _ in range(warmup):
        step()
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def bench_models(smoke: bool) -> dict:
    """Name -> (ModelConfig, train batch, predict batch) of the models the check times."""
    from proformer.model import ModelConfig, model_preset

    if smoke:
        return {"tiny d16": (ModelConfig(kmer=3, dim=16, heads=2, blocks=1, readout=4, length=40), 8, 16)}
    grid = model_preset("grid")
    return {
        "grid d64/2/1/H8": (grid, 512, 2048),
        "grid d256/8/8/H32": (ModelConfig(**{**grid.to_dict(), "dim": 256, "heads": 8, "blocks": 8, "readout": 32}), 256, 1024),
        "dream2022": (model_preset("dream2022"), 128, 512),
    }


def step_bench(args: argparse.Namespace) -> dict:
    import torch

    from proformer.bench import benchmark, matmul_peak

    device = _device()
    precisions = ["32", "bf16"] if device == "cuda" else ["32"]
    peaks = {p: matmul_peak(torch.bfloat16 if p == "bf16" else torch.float32, size=512 if args.smoke else 8192,
                            device=device) for p in precisions}
    rows = []
    for name, (config, train_batch, predict_batch) in bench_models(args.smoke).items():
        for precision in precisions:
            for mode, batch in (("train", train_batch), ("predict", predict_batch)):
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                result = benchmark(config, mode=mode, batch_size=batch, precision=precision, device=device,
                                   steps=1 if args.smoke else 10, warmup=1 if args.smoke else 3, peak_flops=peaks[precision])
                memory = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
                rows.append({"model": name, "precision": precision, "mode": mode, "batch": batch,
                             "sequences/s": result["sequences_per_second"], "TFLOP/s": result["achieved_flops"] / 1e12,
                             "peak TFLOP/s": peaks[precision] / 1e12, "MFU": result["mfu"], "peak GiB": memory})
    dream = [r for r in rows if r["model"] == "dream2022" and r["mode"] == "train" and r["precision"] == "bf16"]
    summary = ""
    if dream:
        rate = dream[0]["sequences/s"]
        summary = (f"dream2022 bf16 training: {rate:,.0f} sequences/s, MFU {dream[0]['MFU']:.1%}; one epoch of "
                   f"{DREAM_TRAIN_ROWS:,} rows ~{DREAM_TRAIN_ROWS / rate:,.0f} s on this GPU against ~"
                   f"{DREAM_TRAIN_ROWS / ORIGINAL_SEQUENCES_PER_SECOND:,.0f} s on the original's 4 x A100")
    return {"summary": summary, "rows": rows}


def step_compile(args: argparse.Namespace) -> dict:
    from proformer.bench import benchmark
    from proformer.model import model_preset

    device = _device()
    if device != "cuda":
        return {"summary": "skipped without a GPU (compiling on a CPU needs a C++ toolchain and minutes)"}
    config, batch = model_preset("dream2022"), 128
    rows = []
    for compiled in (False, True):
        start = time.perf_counter()
        result = benchmark(config, mode="train", batch_size=batch, precision="bf16", device=device, steps=10, warmup=3,
                           compile=compiled)
        rows.append({"model": "dream2022", "compile": compiled, "batch": batch, "sequences/s": result["sequences_per_second"],
                     "MFU": result["mfu"], "wall s incl. warm-up": time.perf_counter() - start})
    speedup = rows[1]["sequences/s"] / rows[0]["sequences/s"]
    return {"summary": f"compiled / eager: {speedup:.2f}x", "rows": rows}


def step_train(args: argparse.Namespace) -> dict:
    import numpy as np

    from proformer.data.dataset import (
        BatchBuilder,
        Dataset,
        ShardedBatchSampler,
        loader,
    )

    work = Path(tempfile.mkdtemp(prefix="gpu_check_train_"))
    data = args.data
    if data is None:
        from proformer.data.synthetic import simulate_library, write_tsv

        data = write_tsv(simulate_library(2_000 if args.smoke else 50_000, seed=0), work / "simulated.txt")
    cli = [sys.executable, "-m", "proformer.cli"]
    prepared, run = work / "data", work / "run"
    _run([*cli, "prepare", str(data), "--out", str(prepared)])
    settings = (["--preset", "grid", "--set", "dim=16", "--set", "blocks=1", "--set", "train.epochs=1", "--set",
                 "train.batch_size=64"] if args.smoke else
                ["--preset", "dream2022", "--set", "train.epochs=3", "--set", "train.precision=bf16"])
    start = time.perf_counter()
    _run([*cli, "train", "--data", str(prepared), "--out", str(run), *settings])
    wall = time.perf_counter() - start
    config = json.loads((run / "config.json").read_text())
    epochs = [line for line in (run / "metrics.csv").read_text().splitlines()[1:] if line.strip()]

    # The input pipeline alone, as training runs it: one epoch of batches built from the memmaps.
    # Its time per sequence over training's (start-up and validation included, so a lower bound
    # of the share) says how much of a step the loader would take if it did not overlap the GPU.
    dataset = Dataset(prepared)
    batch_size = 64 if args.smoke else 512
    builder = BatchBuilder(dataset, dataset.layout(), mask_ratio=0.05, seed=0)
    start = time.perf_counter()
    batches = sum(1 for _ in loader(builder, ShardedBatchSampler(np.arange(len(dataset)), batch_size, shuffle=True)))
    loader_rate = batches * batch_size / (time.perf_counter() - start)
    train_rate = len(dataset) * len(epochs) / wall
    rows = [{"what": "proformer train, end to end (prepare excluded)", "seconds": wall, "sequences/s": train_rate},
            {"what": f"data loader alone, batches of {batch_size}", "seconds": batches * batch_size / loader_rate,
             "sequences/s": loader_rate}]
    share = train_rate / loader_rate
    return {"summary": f"{len(dataset):,} rows, {len(epochs)} epoch(s), best val Pearson {config['best']['val_pearson']:.3f}; "
                       f"the loader needs {share:.1%} of training's time per sequence", "rows": rows,
            "loader_share": share}


def _run(command: list[str]) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    print(completed.stdout[-2000:], completed.stderr[-3000:])
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"proformer {command[3]} failed (exit {completed.returncode}): {last}")


STEP_FUNCTIONS = {"dependencies": step_dependencies, "cuda-tests": step_cuda_tests, "attention": step_attention,
                  "bench": step_bench, "compile": step_compile, "train": step_train}

if __name__ == "__main__":
    sys.exit(main())
