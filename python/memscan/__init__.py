"""memscan: per-sequence measurement and unlearning of verbatim memorization.

Python API:
- `CorpusIndex` — build / open a suffix-array index; count, locate, matching statistics,
  coverage, attribution.
- `memscan.scores` — pair scores (exact, prefix, positional, edit similarity, BLEU-4,
  ROUGE-L, n-gram overlap) and EL_n.
- `scan_against_index`, `scan_pairs` — per-sequence result tables.
"""

from memscan.errors import IndexCorruptError, UserError
from memscan.index import CorpusIndex, Document
from memscan.scan import scan_against_index, scan_pairs
from memscan.tokenizer import load_tokenizer

__all__ = ["CorpusIndex", "Document", "IndexCorruptError", "UserError", "load_tokenizer", "scan_against_index", "scan_pairs"]
