"""Experiments built from the layers below: the sets, implanting, evaluating a model,
the demos and the sweep. The command line only calls into here.

- `sets`: disjoint forget / unseen / held-out KJV passages, or sequences from files.
- `implant`: memorization implanted at a spread of strengths, and the interval after it.
- `evaluate`: one model's forget-set scores, c(D_f), attacks and held-out perplexity.
- `demo`, `demo_report`, `plots`: `memscan demo`; `scan_demo`: `memscan scan-demo`.
- `sweep/`: `memscan sweep`, the methods x models x forget sizes x seeds grid.
- `audit/`: `memscan audit`, find what a model memorized from an indexed corpus, forget it, verify;
  `audit_demo`: `memscan audit-demo`, the audit where the answer is known.
"""
