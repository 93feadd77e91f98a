"""The scanner: token sequences against a suffix-array corpus index and against
references, in the Rust core. Needs no model and never imports torch.

- `tokenizer`: loading tokenizers offline, batch encoding.
- `readers`, `corpus`, `pipeline`: records from JSONL / text / Parquet / datasets
  folders and the built-in KJV, tokenized and indexed.
- `ragged`: packing sequences into the flat arrays the core borrows.
- `index`: `CorpusIndex` (build, open, count, locate, matching statistics).
- `scores`: pair scores (exact, prefix, edit, BLEU-4, ROUGE-L, OVERLAP_n, EL_n).
- `matches`: per-sequence tables (`scan_against_index`, `scan_pairs`); `summary`: their text form.
"""

from memscan.scan.index import CorpusIndex, Document
from memscan.scan.matches import scan_against_index, scan_pairs
from memscan.scan.tokenizer import LoadedTokenizer, load_tokenizer

__all__ = ["CorpusIndex", "Document", "LoadedTokenizer", "load_tokenizer", "scan_against_index", "scan_pairs"]
