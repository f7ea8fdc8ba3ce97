"""Write the small committed fixtures of tests/data/ (deterministic: a rerun changes no byte).

    python tests/data/make_fixtures.py            # (re)write the fixtures beside this script
    python tests/data/make_fixtures.py --check    # exit 1, naming the file, if one differs

What it writes (about 97 KB in all; tests/test_end_to_end.py reads them through the CLI):

``dream_train.tsv``
    400 DREAM-shaped training rows ``sequence<TAB>expression``, no header: the 17-nt head
    TGCATTTTTTTCACATC, a random core of 76-84 nt and the 13-nt tail GGTTACGGCTGTT.
``dream_mini/``
    A miniature of the DREAM 2022 data directory in the layout ``proformer predict --format
    dream-json`` and ``proformer score`` read: ``test_sequences.txt`` (130 sequences, row i =
    test index i), ``public_leaderboard/`` (``ground.json``, ``sample_submission.json`` and one
    ``{subset}_exp_indices.json`` per subset: 65 public indices, every subset with public members)
    and ``test_subsets/*.csv`` (every member of each subset, public and private, with the
    columns of the real files; the SNV list carries its ``split`` column).
``dream_test_truth.tsv``
    The measured expression of all 130 test rows (``sequence<TAB>expression``, test order), the
    held-out truth the real challenge does not distribute; for evaluating TSV predictions.

The planted rule, the same for training and test rows: each core is two halves (the first
``len // 2`` nt, then the rest), each drawn with its own G+C probability p ~ U(0.1, 0.9), and

    expression = 3 + 12 * (G+C fraction of the first half) + noise,   clipped to [0, 17]

with noise sd 0.5 for training rows (every third one rounded to a whole bin, as singletons are)
and sd 0.1 for test rows. Only the 5' half counts, so a model must know where it is in the
sequence: a predictor of total G+C reaches r ~ 0.7, one that reads the wrong half or strand ~ 0.
The test set has the challenge's subsets: random cores, AT-rich "yeast" cores, high and low
expressors, "challenging" cores whose halves disagree, single-nucleotide variants of random
references, motif perturbations (an 8-nt GC-rich or AT-rich block written over a reference) and
motif tiling (one 10-nt GC block at three positions of a reference).

This script does not import proformer: the flanks and the layout are spelled out here, so a
wrong constant in the package fails the tests instead of being copied into their data. It uses
only numpy Generator methods whose streams numpy keeps stable (integers, random, normal,
permutation).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HEAD = "TGCATTTTTTTCACATC"  # the DREAM 2022 construct's 5' flank (17 nt)
TAIL = "GGTTACGGCTGTT"  # its 3' flank (13 nt)
SEED = 20220
N_TRAIN = 400

HERE = Path(__file__).resolve().parent
FILES = ("dream_train.tsv", "dream_test_truth.tsv", "dream_mini")


def half(rng: np.random.Generator, length: int, gc: float) -> str:
    """``length`` random bases, each G or C with probability ``gc`` (then G/C or A/T 50:50)."""
    strong = rng.random(length) < gc
    pick = rng.integers(0, 2, length).astype(bool)
    return "".join(np.where(strong, np.where(pick, "G", "C"), np.where(pick, "A", "T")))


def core(rng: np.random.Generator, left=(0.1, 0.9), right=(0.1, 0.9)) -> str:
    """A 76-84 nt core whose two halves have G+C probabilities drawn from ``left`` / ``right``."""
    length = int(rng.integers(76, 85))
    p_left = left[0] + (left[1] - left[0]) * rng.random()
    p_right = right[0] + (right[1] - right[0]) * rng.random()
    return half(rng, length // 2, p_left) + half(rng, length - length // 2, p_right)


def planted(sequence_core: str) -> float:
    """The rule without noise: 3 + 12 x the G+C fraction of the core's first half."""
    first = sequence_core[: len(sequence_core) // 2]
    return 3.0 + 12.0 * sum(base in "GC" for base in first) / len(first)


def measured(rng: np.random.Generator, sequence_core: str, noise: float) -> float:
    return float(min(17.0, max(0.0, planted(sequence_core) + rng.normal(0.0, noise))))


def training_rows(rng: np.random.Generator) -> str:
    lines = []
    for i in range(N_TRAIN):
        c = core(rng)
        value = measured(rng, c, 0.5)
        text = f"{round(value):.1f}" if i % 3 == 2 else f"{value:.4f}"
        lines.append(f"{HEAD}{c}{TAIL}\t{text}\n")
    return "".join(lines)


def write_over(sequence_core: str, block: str, at: int) -> str:
    return sequence_core[:at] + block + sequence_core[at + len(block) :]


def held_out_set(rng: np.random.Generator) -> dict:
    """The test cores by subset, in generation order, with which members are public."""
    singles = {
        "random": [core(rng) for _ in range(40)],
        "yeast": [core(rng, (0.2, 0.45), (0.2, 0.45)) for _ in range(12)],  # AT-rich, as native promoters
        "high": [core(rng, (0.8, 0.9)) for _ in range(8)],
        "low": [core(rng, (0.1, 0.2)) for _ in range(8)],
        # The halves disagree: a total-G+C model gets these backwards.
        "challenging": [core(rng, (0.8, 0.9), (0.1, 0.2)) if i % 2 else core(rng, (0.1, 0.2), (0.8, 0.9))
                        for i in range(8)],
    }
    pairs: dict[str, list[tuple[str, str]]] = {"SNVs": [], "motif_perturbation": [], "motif_tiling": []}
    for _ in range(10):
        ref = core(rng)
        at = int(rng.integers(0, len(ref)))
        others = [b for b in "ACGT" if b != ref[at]]
        pairs["SNVs"].append((write_over(ref, others[int(rng.integers(0, 3))], at), ref))
    for _ in range(6):
        ref = core(rng)
        for block in ("GCGGCCGC", "ATTAATTA"):
            pairs["motif_perturbation"].append((write_over(ref, block, int(rng.integers(0, len(ref) - 8))), ref))
    for _ in range(4):
        ref = core(rng)
        for at in (4, 34, 62):  # first half, the middle, second half
            pairs["motif_tiling"].append((write_over(ref, "GCGCGGCGCC", at), ref))
    return {"singles": singles, "pairs": pairs}


def dream_mini(rng: np.random.Generator, root: Path) -> str:
    """Write ``root`` (a miniature dream2022 directory); return the truth TSV's text."""
    subsets = held_out_set(rng)
    # Every distinct core is one test row; pair references appear once however many alts they have.
    cores: list[str] = []
    for members in subsets["singles"].values():
        cores.extend(members)
    for listed in subsets["pairs"].values():
        for alt, ref in listed:
            cores.extend(c for c in (ref, alt) if c not in cores)
    order = rng.permutation(len(cores))  # generation order -> test index
    index = {c: int(order[i]) for i, c in enumerate(cores)}
    by_index = sorted(cores, key=index.__getitem__)
    truth = {index[c]: round(measured(rng, c, 0.1), 6) for c in by_index}

    board, csvs = root / "public_leaderboard", root / "test_subsets"
    board.mkdir(parents=True)
    csvs.mkdir()
    (root / "test_sequences.txt").write_text("".join(f"{HEAD}{c}{TAIL}\n" for c in by_index))

    public: set[int] = set()
    single_files = {"random": "all_random_seqs.csv", "yeast": "yeast_seqs.csv", "high": "high_exp_seqs.csv",
                    "low": "low_exp_seqs.csv", "challenging": "challenging_seqs.csv"}
    for name, members in subsets["singles"].items():
        shown = [index[c] for c in members[: len(members) // 2]]  # the first half is public
        public.update(shown)
        (board / f"{name}_exp_indices.json").write_text(json.dumps({str(i): truth[i] for i in shown}))
        extra = "Unnamed: 0," if name == "random" else ""
        lines = [f",{extra}tag,sequence,pos,exp"]
        for k, c in enumerate(members):
            lines.append(f"{k},{f'{k},' if extra else ''}{name}_{k},{HEAD}{c}{TAIL},{index[c]},")
        (csvs / single_files[name]).write_text("\n".join(lines) + "\n")

    pair_files = {"motif_perturbation": "motif_perturbation_seqs.csv", "motif_tiling": "motif_tiling_seqs.csv"}
    for name, listed in subsets["pairs"].items():
        shown = listed[: len(listed) // 2]
        keyed = [(index[alt], index[ref]) for alt, ref in shown]
        for pair in keyed:
            public.update(pair)
        (board / f"{name}_exp_indices.json").write_text(
            json.dumps({f"{a},{r}": [truth[a], truth[r]] for a, r in keyed}))
        if name == "SNVs":
            lines = ["alt_pos,ref_pos,split"] + [
                f"{index[alt]},{index[ref]},{'public' if k < len(shown) else 'private'}"
                for k, (alt, ref) in enumerate(listed)]
        else:
            extra = "Unnamed: 0," if name == "motif_perturbation" else ""
            lines = [f",{extra}alt_tag,ref_tag,alt_sequence,ref_sequence,alt_pos,ref_pos,alt_exp,ref_exp"]
            for k, (alt, ref) in enumerate(listed):
                lines.append(f"{k},{f'{k},' if extra else ''}{name}_{k},ref_{index[ref]},{HEAD}{alt}{TAIL},"
                             f"{HEAD}{ref}{TAIL},{index[alt]},{index[ref]},,")
        (csvs / (pair_files.get(name) or "snv_pairs_reconstructed.csv")).write_text("\n".join(lines) + "\n")

    # ground.json and the sample submission list the public indices in one shuffled order, as the
    # real files do: a submission must follow that order, not the sorted one.
    keys = [str(i) for i in rng.permutation(sorted(public))]
    (board / "ground.json").write_text(json.dumps({k: truth[int(k)] for k in keys}))
    (board / "sample_submission.json").write_text(
        json.dumps({k: round(float(rng.normal()), 6) for k in keys}))
    return "".join(f"{HEAD}{c}{TAIL}\t{truth[index[c]]}\n" for c in by_index)


def write_all(out: Path) -> None:
    rng = np.random.default_rng(SEED)
    (out / "dream_train.tsv").write_text(training_rows(rng))
    (out / "dream_test_truth.tsv").write_text(dream_mini(rng, out / "dream_mini"))


def snapshot(root: Path) -> dict[str, bytes]:
    files = {}
    for name in FILES:
        path = root / name
        for item in sorted([path] if path.is_file() else path.rglob("*")):
            if item.is_file():
                files[item.relative_to(root).as_posix()] = item.read_bytes()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        write_all(Path(scratch))
        fresh = snapshot(Path(scratch))
    if args.check:
        committed = snapshot(HERE)
        differ = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
        if differ:
            print(f"fixtures differ from what {Path(__file__).name} writes: {', '.join(differ)}; "
                  f"run python tests/data/make_fixtures.py", file=sys.stderr)
            return 1
        print(f"{len(fresh)} fixture files match")
        return 0
    for name, data in fresh.items():
        path = HERE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"wrote {len(fresh)} files, {sum(map(len, fresh.values())):,} bytes, under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
