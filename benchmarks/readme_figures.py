"""Measure the figures the README quotes and write them into docs/benchmarks.md, their one home.

The README states no timing or count of its own: it links the block this script writes between
``<!-- readme-figures:start -->`` and ``<!-- readme-figures:end -->`` in docs/benchmarks.md. So the
figures cannot drift apart, and ``tests/test_docs.py`` checks that the number of tests the block
states is the number the default suite collects (run ``--count`` after adding or removing tests).

    python benchmarks/readme_figures.py            # the quickstart and the test suite, timed (~6 min)
    python benchmarks/readme_figures.py --count    # only the number of tests (a few seconds)

Each figure is written with the date, the commit and the machine it was measured on; ``--count``
keeps the timed figures and updates the count alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- readme-figures:start -->", "<!-- readme-figures:end -->"
#: The row that states the number of tests: tests/test_docs.py reads it.
COUNT_ROW = re.compile(r"^\| tests in the default suite \| (?P<selected>[\d,]+) tests")


def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def stamp() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip() or "unknown"
    return f"{datetime.date.today().isoformat()}, commit {commit}, {machine()}"


def run(command: list[str], cwd: Path) -> tuple[str, float]:
    began = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout + done.stderr, time.perf_counter() - began


def count_tests() -> tuple[int, int]:
    """(selected, deselected) of the default suite, from pytest's collection."""
    text, _ = run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"], ROOT)
    found = re.search(r"(\d+)(?:/(\d+))? tests? collected(?: \((\d+) deselected\))?", text)
    if not found:
        sys.exit(f"no collection summary in pytest's output:\n{text[-2000:]}")
    selected = int(found.group(1))
    return selected, int(found.group(3) or 0)


def quickstart_row() -> str:
    with tempfile.TemporaryDirectory() as folder:
        _, seconds = run([sys.executable, "-m", "proformer.cli", "quickstart", "--out", f"{folder}/qs",
                          "--no-progress"], Path(folder))
        metrics = json.loads(Path(folder, "qs", "report", "metrics.json").read_text())
    minutes, rest = divmod(round(seconds), 60)
    return (f"| quickstart (`proformer quickstart`) | {minutes} min {rest} s; held-out Pearson r "
            f"{metrics['test_pearson']:.4f}, noise ceiling {metrics['noise_ceiling']:.4f} | {stamp()} |")


def suite_row() -> str:
    text, seconds = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], ROOT)
    summary = [line for line in text.splitlines() if re.search(r"\d+ passed", line)][-1].strip("= ")
    return f"| test suite (`python -m pytest`, the work tree) | {summary} ({seconds:.0f} s wall) | {stamp()} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", action="store_true", help="update only the number of tests")
    args = parser.parse_args(argv)
    text = DOC.read_text()
    if START not in text or END not in text:
        sys.exit(f"{DOC} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    old, tail = rest.split(END, 1)
    rows = {line.split("|")[1].strip(): line for line in old.splitlines() if line.startswith("| ") and
            not line.startswith("| figure")}
    selected, deselected = count_tests()
    count = (f"| tests in the default suite | {selected:,} tests ({deselected} more marked slow, run with "
             f"`pytest -m slow`) | {stamp()} |")
    rows["tests in the default suite"] = count
    if not args.count:
        quickstart, suite = quickstart_row(), suite_row()
        rows[quickstart.split("|")[1].strip()] = quickstart
        rows[suite.split("|")[1].strip()] = suite
    block = "\n".join(["", "| figure | value | measured |", "|---|---|---|", *rows.values(), ""])
    DOC.write_text(head + START + block + END + tail)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
