"""proformer's table and FASTA readers against the libraries that parse the same formats.

Issue 23 asks: where a library parses a format faster with errors as good, use it. This measures
both halves on the formats prepare and predict read:

Speed
    Rows per second reading a DREAM TSV (``sequence<TAB>value``, ``--rows`` rows of 110 nt) into
    sequences + float64 values: ``proformer.io.reader.read_sequences(values=True)`` (which also
    checks every symbol), ``pyarrow.csv.read_csv`` and ``pandas.read_csv`` (which check nothing),
    and the same libraries followed by the symbol check a reader must still do. Best of
    ``--repeat`` runs, one process, the file in the page cache.
Errors
    The message each gives for three broken files: a symbol outside ACGTN on line 7,000, a row
    with three fields on line 7,000, and a value ``1_000`` on line 7,000 (Python syntax, not a
    data format). Whether the line number (7000) is in the message is the figure that matters:
    a user fixing a 6.7M-row file needs it.

    python benchmarks/bench_readers.py [--rows 1000000] [--repeat 3]

pyarrow is not a dependency of proformer: install it to run this (``pip install pyarrow``).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def write_tsv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    codes = letters[rng.integers(0, 4, size=(rows, 110))]
    values = rng.normal(10, 3, size=rows)
    with open(path, "w") as handle:
        for start in range(0, rows, 100_000):
            block = codes[start : start + 100_000]
            text = [row.tobytes().decode() for row in block]
            handle.writelines(f"{s}\t{v:.6g}\n" for s, v in zip(text, values[start : start + 100_000]))


def ours(path: Path) -> int:
    from proformer.io.reader import read_sequences

    return sum(len(chunk.sequences) for chunk in read_sequences(path, values=path.suffix == ".tsv"))


def pysam_fasta(path: Path, check: bool = False) -> int:
    import pysam

    with pysam.FastxFile(str(path)) as records:
        sequences = [record.sequence for record in records]
    if check:
        checked(sequences)
    return len(sequences)


def write_fasta(tsv: Path, fasta: Path) -> None:
    with open(tsv) as source, open(fasta, "w") as out:
        for i, line in enumerate(source):
            out.write(f">s{i}\n{line.split(chr(9), 1)[0]}\n")


def checked(sequences) -> None:
    """The symbol check a library reader still needs (proformer's, on the joined column)."""
    from proformer.io.errors import InputError
    from proformer.sequence import INPUT_CODES, INVALID

    joined = "\n".join(sequences).encode("ascii", errors="replace")
    codes = INPUT_CODES[np.frombuffer(joined, dtype=np.uint8)]
    bad = np.flatnonzero((codes == INVALID) & (np.frombuffer(joined, dtype=np.uint8) != ord("\n")))
    if bad.size:
        row = joined.count(b"\n", 0, int(bad[0])) + 1
        raise InputError(f"row {row}: invalid symbol")


def arrow(path: Path, check: bool = False) -> int:
    import pyarrow as pa
    from pyarrow import csv

    table = csv.read_csv(path, read_options=csv.ReadOptions(column_names=["sequence", "value"]),
                         parse_options=csv.ParseOptions(delimiter="\t"),
                         convert_options=csv.ConvertOptions(column_types={"sequence": pa.string(), "value": pa.float64()}))
    if check:
        checked(table.column("sequence").to_pylist())
    return table.num_rows


def pandas(path: Path, check: bool = False) -> int:
    import pandas as pd

    frame = pd.read_csv(path, sep="\t", header=None, names=["sequence", "value"], dtype={"sequence": str, "value": float})
    if check:
        checked(frame["sequence"].tolist())
    return len(frame)


def best_time(function, path: Path, repeat: int) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        rows = function(path)
        times.append(time.perf_counter() - began)
    return min(times), rows


def error_of(function, path: Path) -> str:
    try:
        function(path)
    except Exception as error:  # noqa: BLE001 - the message is the measurement
        return f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
    return "(no error: the bad row was read)"


def broken_files(folder: Path) -> dict[str, Path]:
    good = [f"{'ACGT' * 27}AC\t{i / 7:.4f}\n" for i in range(10_000)]
    cases = {"symbol X on line 7000": "ACGTXACGT\t1.0\n", "3 fields on line 7000": "ACGT\t1.0\textra\n",
             "value 1_000 on line 7000": "ACGTACGT\t1_000\n"}
    files = {}
    for name, line in cases.items():
        path = folder / (name.split()[0] + "_" + name.split()[1] + ".tsv")
        path.write_text("".join(good[:6999] + [line] + good[7000:]))
        files[name] = path
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import torch  # noqa: F401  (imported as in a real run, so the timings do not include it)

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        tsv = folder / "train.tsv"
        write_tsv(tsv, args.rows)
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.rows:,} rows "
              f"({tsv.stat().st_size / 2**20:.0f} MiB), best of {args.repeat}\n")
        print("| reader | seconds | rows/s | checks symbols |\n|---|---:|---:|---|")
        readers = [("proformer read_sequences", ours, "yes"),
                   ("pyarrow.csv.read_csv", arrow, "no"),
                   ("pyarrow.csv + symbol check", lambda p: arrow(p, True), "yes"),
                   ("pandas.read_csv", pandas, "no"),
                   ("pandas + symbol check", lambda p: pandas(p, True), "yes")]
        for name, function, checks in readers:
            seconds, rows = best_time(function, tsv, args.repeat)
            print(f"| {name} (TSV) | {seconds:.2f} | {rows / seconds:,.0f} | {checks} |")
        fasta = folder / "train.fa"
        write_fasta(tsv, fasta)
        for name, function, checks in [("proformer read_sequences", ours, "yes"), ("pysam.FastxFile", pysam_fasta, "no"),
                                       ("pysam.FastxFile + symbol check", lambda p: pysam_fasta(p, True), "yes")]:
            seconds, rows = best_time(function, fasta, args.repeat)
            print(f"| {name} (FASTA) | {seconds:.2f} | {rows / seconds:,.0f} | {checks} |")
        print("\n| broken file | proformer | pyarrow | pandas |\n|---|---|---|---|")
        for name, path in broken_files(folder).items():
            cells = [error_of(function, path) for function in (ours, lambda p: arrow(p, True), lambda p: pandas(p, True))]
            print(f"| {name} | " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
        print("\n| broken FASTA | proformer | pysam + symbol check |\n|---|---|---|")
        for name, text in (("a sequence line before the first header", "ACGT\n>a\nACGT\n"),
                           ("symbol X in record 2 (line 4)", ">a\nACGT\n>b\nACXT\n")):
            path = folder / "broken.fa"
            path.write_text(text)
            cells = [error_of(function, path) for function in (ours, lambda p: pysam_fasta(p, True))]
            print(f"| {name} | " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")


if __name__ == "__main__":
    main()
