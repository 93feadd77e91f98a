"""Loading tokenizers offline and encoding text in batches.

The built-in tokenizer is SmolLM2-135M's (the default model of memscan's model-side
commands), shipped gzipped in the package. Any `tokenizer.json` path works, and a
hub id works for users who are online.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from memscan import hub
from memscan.errors import UserError

BUILTIN = {"smollm2-135m": "smollm2-135m-tokenizer.json.gz"}
DEFAULT_TOKENIZER = "smollm2-135m"
ENCODE_BATCH = 1024


@dataclass(frozen=True)
class LoadedTokenizer:
    name: str
    tokenizer: Tokenizer

    @property
    def sha256(self) -> str:
        """Identity of the tokenizer's full definition, stored in every index."""
        return hashlib.sha256(self.tokenizer.to_str().encode()).hexdigest()

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def identity(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "vocab_size": self.vocab_size}

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids of each text (no special tokens added), encoded in parallel batches."""
        out: list[np.ndarray] = []
        for start in range(0, len(texts), ENCODE_BATCH):
            batch = self.tokenizer.encode_batch_fast(texts[start : start + ENCODE_BATCH], add_special_tokens=False)
            out.extend(np.asarray(e.ids, dtype=np.uint32) for e in batch)
        return out

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)


def load_tokenizer(name: str = DEFAULT_TOKENIZER) -> LoadedTokenizer:
    """A built-in name, a path to tokenizer.json (or a folder holding one), or a hub id."""
    if name in BUILTIN:
        data = resources.files("memscan.data").joinpath(BUILTIN[name]).read_bytes()
        return LoadedTokenizer(name, Tokenizer.from_str(gzip.decompress(data).decode()))
    path = Path(name)
    if path.is_dir():
        path = path / "tokenizer.json"
    if path.is_file():
        try:
            return LoadedTokenizer(str(Path(name).resolve()), Tokenizer.from_file(str(path)))
        except Exception as e:  # tokenizers raises a bare Exception on malformed files
            raise UserError(f"{path}: not a tokenizers JSON file ({e})") from None
    unavailable = UserError(
        f"tokenizer {name!r} is not built in ({', '.join(BUILTIN)}), not a local tokenizer.json, "
        "and could not be fetched from the model hub (offline?): pass a path to a local tokenizer.json"
    )
    if not (hub.HUB_ID.match(name) and hub.available(name, ("tokenizer.json",))):
        raise unavailable
    try:
        return LoadedTokenizer(name, Tokenizer.from_pretrained(name))
    except Exception:
        raise unavailable from None
