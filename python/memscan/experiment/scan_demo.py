"""`memscan scan-demo`: the scanner's job on built-in data, offline.

Indexes the built-in corpus (the KJV) with the built-in tokenizer (cached after the
first run), then scans texts of known provenance against it — passages copied
verbatim, the same passages with every sixth word changed, a new text quoting one
verse, and new texts — and scores the edited passages against the originals as
(generation, reference) pairs. Writes Parquet/JSONL tables and a Markdown report.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from tqdm import tqdm

from memscan import io
from memscan.cache import cache_dir
from memscan.errors import UserError
from memscan.scan.corpus import kjv_paragraphs
from memscan.scan.index import CorpusIndex
from memscan.scan.matches import scan_against_index, scan_pairs
from memscan.scan.pipeline import build_index
from memscan.scan.summary import index_summary, pairs_summary
from memscan.scan.tokenizer import DEFAULT_TOKENIZER, load_tokenizer

K = 32
PASSAGES = {  # a phrase that picks one paragraph of the built-in corpus
    "genesis-creation": "In the beginning God created the heaven and the earth.",
    "psalm-23": "The LORD [is] my shepherd",
    "john-3-16": "For God so loved the world",
}
NEW_TEXTS = {
    "new-suffix-arrays": (
        "A suffix array lists every suffix of a text in sorted order, so that each substring "
        "occupies one contiguous block of it and can be found by binary search in logarithmic time."
    ),
    "new-unlearning": (
        "Unlearning must be judged one sequence at a time: a forget set whose average looks "
        "forgotten can still hold passages the model recites word for word."
    ),
}
SWAPS = ["lamp", "river", "stone", "window", "garden", "silver", "morning", "letter"]


def _builtin_index(tokenizer, threads) -> CorpusIndex:
    path = cache_dir() / f"index-kjv-{DEFAULT_TOKENIZER}"
    if path.exists():
        try:
            index = CorpusIndex.open(path)
            index.check_tokenizer(tokenizer.identity())
            click.echo(f"using the cached index at {path}", err=True)
            return index
        except Exception as e:
            click.echo(f"rebuilding the cached index at {path} ({e})", err=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tqdm(desc="indexing the KJV", unit=" tok", unit_scale=True, file=sys.stderr) as bar:
        return build_index(
            ["kjv"], path, tokenizer, threads=threads, overwrite=True, progress=lambda d, t: bar.update(t)
        )


PASSAGE_WORDS = 60


def _find(paragraphs: dict[str, str], phrase: str) -> str:
    """The PASSAGE_WORDS words of the corpus that start with `phrase`."""
    for text in paragraphs.values():
        if phrase in text:
            return " ".join(text[text.index(phrase) :].split()[:PASSAGE_WORDS])
    raise UserError(f"the built-in corpus has no paragraph with {phrase!r}")


def edit_every_sixth_word(text: str) -> str:
    words = text.split()
    return " ".join(SWAPS[i % len(SWAPS)] if i % 6 == 5 else w for i, w in enumerate(words))


def demo_texts() -> dict[str, str]:
    paragraphs = {r.id: r.text or "" for r in kjv_paragraphs()}
    texts: dict[str, str] = {}
    for name, phrase in PASSAGES.items():
        texts[f"verbatim:{name}"] = _find(paragraphs, phrase)
    for name, phrase in PASSAGES.items():
        texts[f"edited:{name}"] = edit_every_sixth_word(_find(paragraphs, phrase))
    quoted = _find(paragraphs, PASSAGES["john-3-16"])
    verse = quoted[quoted.index("For God so loved") :].split(". ")[0] + "."
    texts["quote-in-new-text"] = (
        f"Asked for a single line to carry into the new year, she wrote: {verse} Then she closed the notebook."
    )
    texts.update({f"new:{k}": v for k, v in NEW_TEXTS.items()})
    return texts


def run_demo(out: Path, threads: int | None = None, overwrite: bool = False) -> None:
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists (pass --overwrite to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tokenizer = load_tokenizer(DEFAULT_TOKENIZER)
    index = _builtin_index(tokenizer, threads)

    texts = demo_texts()
    ids = list(texts)
    seqs = tokenizer.encode(list(texts.values()))
    scan = scan_against_index(index, ids, seqs, k=K, threads=threads)

    edited = [i for i in ids if i.startswith("edited:")]
    originals = [seqs[ids.index(i.replace("edited:", "verbatim:"))] for i in edited]
    pairs = scan_pairs(edited, [seqs[ids.index(i)] for i in edited], originals, n=10, threads=threads)

    io.write_parquet(scan, out / "scan.parquet")
    io.write_jsonl(scan.drop_columns(["match_lengths"]), out / "scan.jsonl")
    io.write_parquet(pairs, out / "pairs.parquet")
    scan_text, pairs_text = index_summary(scan, K), pairs_summary(pairs)
    elapsed = time.perf_counter() - started
    report = "\n".join(
        [
            "# memscan demo: scanning texts against the King James Bible",
            "",
            f"Index: {index.n_documents} paragraphs, {index.n_tokens} tokens ({tokenizer.name} tokenizer), at `{index.path}`.",
            "",
            f"## Texts against the corpus (spans of >= {K} tokens)",
            "",
            index_summary(scan, K, markdown=True),
            "",
            "## Edited passages against their originals (pair scores)",
            "",
            pairs_summary(pairs, markdown=True),
            "",
            f"Finished in {elapsed:.1f} s. Tables: `scan.parquet`, `scan.jsonl`, `pairs.parquet`.",
            "",
        ]
    )
    io.write_text(report, out / "report.md")
    click.echo(
        f"\n{scan_text}\n\n{pairs_text}\n\nwrote {out}/report.md, scan.parquet, scan.jsonl, pairs.parquet ({elapsed:.1f} s)"
    )
