"""EL_n's n-gram overlap: the Rust core against the pure-Python tuple-set way of the
reference implementation (Jang et al.), side by side in one process, on one core.

Workload: 32 KJV sequences of 200 tokens, one generation per prefix (t = 1..T-n),
half of them recited verbatim and half with every fifth token changed.

    python benches/bench_overlap.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import best_of
from memscan.scan.corpus import kjv_paragraphs
from memscan.scan.ragged import Packed, pack
from memscan.scan.scores import extraction_likelihood
from memscan.scan.tokenizer import load_tokenizer
from reference import extraction_likelihood as python_el

T, N, SEQUENCES = 200, 10, 32


def workload():
    tok = load_tokenizer()
    texts = [r.text for r in kjv_paragraphs()][:400]
    stream = np.concatenate(tok.encode(texts))
    seqs = [stream[i * T : (i + 1) * T].tolist() for i in range(SEQUENCES)]
    gens, owner, prefix = [], [], []
    for s, x in enumerate(seqs):
        for p in range(1, T - N + 1):  # Jang et al.: prefixes 1..T-n
            g = list(x[p:])
            if s % 2:
                g[::5] = [t + 1 for t in g[::5]]
            gens.append(g)
            owner.append(s)
            prefix.append(p)
    return seqs, gens, owner, prefix


def main():
    seqs, gens, owner, prefix = workload()
    by_seq = [{} for _ in seqs]
    for g, s, p in zip(gens, owner, prefix):
        by_seq[s][p] = g
    gens_np = [np.asarray(g, dtype=np.uint32) for g in gens]

    python_values = [python_el(x, by_seq[s], N) for s, x in enumerate(seqs)]
    rust_values = extraction_likelihood(seqs, gens_np, owner, prefix, N, threads=1)
    assert np.allclose(python_values, rust_values, rtol=0, atol=1e-12), "Rust and Python disagree"

    packed = Packed(*pack(gens_np))
    owner_np, prefix_np = np.asarray(owner, dtype=np.uint32), np.asarray(prefix, dtype=np.uint32)
    t_python = best_of(3, lambda: [python_el(x, by_seq[s], N) for s, x in enumerate(seqs)])
    t_list_1 = best_of(20, lambda: extraction_likelihood(seqs, gens_np, owner, prefix, N, threads=1))
    t_packed_1 = best_of(20, lambda: extraction_likelihood(seqs, packed, owner_np, prefix_np, N, threads=1))
    t_packed_2 = best_of(20, lambda: extraction_likelihood(seqs, packed, owner_np, prefix_np, N, threads=2))
    result = {
        "generations": len(gens),
        "python_tuple_set_s": round(t_python, 4),
        "rust_from_list_of_arrays_1_thread_s": round(t_list_1, 5),
        "rust_packed_1_thread_s": round(t_packed_1, 5),
        "rust_packed_2_threads_s": round(t_packed_2, 5),
        "speedup_list_1_thread": round(t_python / t_list_1, 1),
        "speedup_packed_1_thread": round(t_python / t_packed_1, 1),
        "speedup_packed_2_threads": round(t_python / t_packed_2, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
