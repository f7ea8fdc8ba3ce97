"""A small genome (with an N run and soft-masked bases), its signal, and tiny ATAC-shaped runs."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import TRACK_LENGTHS as LENGTHS
from helpers import TRACK_N_RUN as N_RUN
from helpers import write_atac_run

from proformer.data.genome_sim import write_bigwig

@pytest.fixture(scope="session")
def genome(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("genome")
    rng = np.random.default_rng(3)
    text = {name: "".join(rng.choice(list("ACGT"), length)) for name, length in LENGTHS.items()}
    chrom, start, end = N_RUN
    text[chrom] = text[chrom][:start] + "N" * (end - start) + text[chrom][end:]
    text["chr1"] = text["chr1"][:500] + text["chr1"][500:520].lower() + text["chr1"][520:]  # soft-masked
    fasta = root / "genome.fa"
    fasta.write_text("".join(f">{name}\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n"
                             for name, seq in text.items()))
    signal = {name: rng.gamma(2.0, 1.0, length) for name, length in LENGTHS.items()}
    signal["chr1"][700:720] = np.nan  # no data: counts as 0, as in atac prepare
    write_bigwig(root / "signal.bw", signal)
    run = write_atac_run(root / "run")
    return {"root": root, "fasta": fasta, "signal": root / "signal.bw", "text": {k: v.upper() for k, v in text.items()},
            "values": signal, "run": run}
