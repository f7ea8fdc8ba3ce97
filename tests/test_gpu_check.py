"""benchmarks/gpu_check.py: its arguments, dependency check, step runner and report, on a CPU.

The measuring steps need a GPU; here the script's own machinery is checked: a step that hangs is
killed at its limit and named, a failing step makes the exit status 1 and is named, a missing
package is named with its wheel, and the JSON and Markdown reports hold what the steps returned.
"""


from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_arguments_are_checked_with_messages_that_name_the_value(gpu_check, tmp_path, capsys):
    args = gpu_check.parse_args(["--out", str(tmp_path), "--only", "bench", "train", "--smoke"])
    assert args.only == ["bench", "train"] and args.smoke and args.out == tmp_path
    for argv, expected in ((["--only", "bench"], "--out"), (["--out", "x", "--only", "benchmark"], "invalid choice"),
                           (["--out", "x", "--data", str(tmp_path / "absent.txt")], "absent.txt: no such file"),
                           (["--out", "x", "--time-scale", "0"], "--time-scale 0.0: must be > 0")):
        with pytest.raises(SystemExit) as stop:
            gpu_check.parse_args(argv)
        assert stop.value.code == 2
        assert expected in capsys.readouterr().err


def test_a_missing_package_is_named_by_its_wheel_before_anything_runs(gpu_check, tmp_path, monkeypatch, capsys):
    assert gpu_check.missing_dependencies({"json": "json", "no_such_module_xyz": "no-such-wheel", "yaml": "pyyaml"}) == \
        ["no-such-wheel"]
    monkeypatch.setattr(gpu_check, "REQUIRED", {**gpu_check.REQUIRED, "no_such_module_xyz": "no-such-wheel"})
    assert gpu_check.main(["--out", str(tmp_path / "out"), "--smoke"]) == 2
    assert "missing Python package(s): no-such-wheel" in capsys.readouterr().err
    assert not (tmp_path / "out" / "gpu_check.json").exists()


def test_without_a_gpu_the_full_check_refuses_and_points_to_smoke(gpu_check, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "cuda_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "--smoke" in capsys.readouterr().err


def test_a_hanging_step_is_killed_at_its_limit_and_a_failing_one_keeps_its_last_line(gpu_check, tmp_path):
    args = gpu_check.parse_args(["--out", str(tmp_path)])
    start = time.perf_counter()
    hung = gpu_check.run_child("bench", args, limit=1.0, command=[sys.executable, "-c", "import time; time.sleep(60)"])
    assert hung["status"] == "timed out" and "after 1 s" in hung["error"]
    assert time.perf_counter() - start < 10
    failed = gpu_check.run_child("train", args, limit=30, command=[
        sys.executable, "-c", "import sys; print('working'); sys.exit('proformer train failed: out of memory')"])
    assert failed["status"] == "failed" and failed["error"] == "exit 1: proformer train failed: out of memory"
    # A child that exits 0 but never wrote its result did not finish its step.
    silent = gpu_check.run_child("attention", args, limit=30, command=[sys.executable, "-c", "pass"])
    assert silent["status"] == "failed"


def test_the_report_holds_each_steps_rows_in_json_and_markdown(gpu_check, tmp_path):
    report = {"machine": {"python": "3.12", "torch": "2.11", "cuda": "13.0", "cpu": "x86_64", "gpu": "NVIDIA H100",
                          "gpu_memory_gib": 79.2},
              "smoke": False, "complete": False,
              "steps": {"bench": {"status": "passed", "seconds": 41.25, "summary": "dream2022 bf16: 3,000 sequences/s",
                                  "rows": [{"model": "dream2022", "sequences/s": 3012.345678, "peak GiB": None}]},
                        "train": {"status": "timed out", "seconds": 130.0, "error": "still running | killed"}}}
    gpu_check.write_report(report, tmp_path)
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == report
    text = (tmp_path / "gpu_check.md").read_text()
    assert "Machine: NVIDIA H100 (79.2 GiB); torch 2.11 (CUDA 13.0)" in text
    assert "**Incomplete" in text
    assert "| bench | passed | 41.2 | dream2022 bf16: 3,000 sequences/s |" in text
    assert "| train | timed out | 130.0 | still running / killed |" in text  # a | would break the table
    assert "| model | sequences/s | peak GiB |" in text and "| dream2022 | 3012 |  |" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_check.json", "gpu_check.md"]  # no temporaries left


def test_the_parent_runs_the_steps_in_order_and_a_failed_one_fails_the_run(gpu_check, tmp_path, monkeypatch, capsys):
    """main's loop with the step runner stubbed (real steps: the slow smoke runs below): each step
    under its smoke limit (twice the full one), the reports rewritten after every step, the last
    complete, exit status 1 naming the failed step."""
    ran = []

    def run_child(step, args, limit, command=None):
        ran.append((step, limit))
        if len(ran) > 1:  # the report so far is on disk while the next step runs
            assert list(json.loads((args.out / "gpu_check.json").read_text())["steps"]) == [s for s, _ in ran[:-1]]
        if step == "dependencies":
            return {"status": "passed", "seconds": 1.0, "summary": "all required packages import"}
        return {"status": "failed", "seconds": 2.0, "error": "exit 1: proformer prepare failed (exit 2)"}

    monkeypatch.setattr(gpu_check, "run_child", run_child)
    out = tmp_path / "out"
    assert gpu_check.main(["--out", str(out), "--smoke", "--only", "train", "dependencies"]) == 1
    assert ran == [("dependencies", 2 * gpu_check.TIME_LIMITS["dependencies"]), ("train", 2 * gpu_check.TIME_LIMITS["train"])]
    assert "FAILED: train" in capsys.readouterr().err
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["complete"] and report["smoke"]
    assert [(step, result["status"]) for step, result in report["steps"].items()] == [("dependencies", "passed"),
                                                                                     ("train", "failed")]
    assert "| train | failed | 2.0 | exit 1: proformer prepare failed (exit 2) |" in (out / "gpu_check.md").read_text()


@pytest.mark.slow
def test_a_smoke_run_writes_both_reports_and_a_failed_step_fails_the_run(tmp_path):
    """~6 s (three fresh processes, the dependency step importing every package), so marked slow:
    `pytest -m slow` runs it, with test_every_step_passes_a_smoke_run, and benchmarks/gpu_check.py
    runs the same parent on the GPU machine. The default suite keeps its parts: the step runner's
    failures (test_a_hanging_step_is_killed_...), the reports (test_the_report_holds_...) and the
    refusals before any step runs."""
    bad = tmp_path / "bad.txt"
    bad.write_text("ACGTX\tnot-a-number\n")
    out = tmp_path / "out"
    completed = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--smoke", "--only", "dependencies",
                                "train", "--data", str(bad)], capture_output=True, text=True, timeout=240)
    assert completed.returncode == 1, completed.stderr
    assert "FAILED: train" in completed.stderr
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["complete"] and report["steps"]["dependencies"]["status"] == "passed"
    assert report["steps"]["dependencies"]["versions"]["torch"]
    assert report["steps"]["train"]["status"] == "failed"
    assert "proformer prepare failed" in report["steps"]["train"]["error"]
    assert "| train | failed |" in (out / "gpu_check.md").read_text()


@pytest.mark.slow
def test_every_step_passes_a_smoke_run(tmp_path):
    completed = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--smoke"], capture_output=True,
                               text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [s["status"] for s in report["steps"].values()] == ["passed"] * 6
