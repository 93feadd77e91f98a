"""`memscan score`: free generations against a corpus index, or aligned pairs against references."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import click
import pyarrow.parquet as pq

from memscan import io
from memscan.cli import options
from memscan.errors import UserError
from memscan.progress import progress_bars
from memscan.scan.index import CorpusIndex
from memscan.scan.matches import scan_against_index, scan_pairs
from memscan.scan.pipeline import check_inputs, records_of, tokenize
from memscan.scan.summary import IndexSummary, pairs_summary
from memscan.scan.tokenizer import DEFAULT_TOKENIZER, load_tokenizer

SCAN_CHUNK = 8192  # sequences per streamed part of an index scan


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.option(
    "--index", "index_dir", type=click.Path(path_type=Path), help="Score free generations against this corpus index."
)
@click.option("--references", type=str, help="Score aligned pairs against these references (same id, or same order).")
@options.output("Parquet file to write [default: INPUT stem + .scores.parquet].", required=False)
@click.option("--jsonl", is_flag=True, help="Also write the table as JSONL beside the Parquet file.")
@click.option(
    "--k", type=options.count(1), default=32, show_default=True, help="Span length that counts as a corpus match."
)
@click.option(
    "--n",
    type=options.count(0),
    default=10,
    show_default=True,
    help="n of the n-gram overlap for pairs (0: skip).",
)
@options.tokenizer(None, "Tokenizer [default: the index's, else smollm2-135m].")
@options.text_field
@options.id_field
@options.max_tokens
@options.threads
@options.overwrite
@options.engine
@options.ray_address
@options.ray_workers
def score(
    input_path,
    index_dir,
    references,
    out,
    jsonl,
    k,
    n,
    tokenizer,
    text_field,
    id_field,
    max_tokens,
    threads,
    overwrite,
    engine,
    ray_address,
    ray_workers,
):
    """Score the sequences in INPUT for verbatim and approximate memorization.

    With --engine ray, the index's shards are served by Ray actors (each on --threads
    threads, default 1) and their answers merged: the same table as the local engine."""
    if (index_dir is None) == (references is None):
        raise UserError("give exactly one of --index DIR (free generations) or --references FILE (aligned pairs)")
    options.check_engine(engine, ray_address, ray_workers)
    if engine == "ray" and index_dir is None:
        raise UserError("--engine ray serves an index: it applies to --index only")
    check_inputs([input_path, *([references] if references else [])])
    out = out or Path(Path(input_path).name.split(".")[0] + ".scores.parquet")
    outputs = [out, out.with_suffix(".jsonl")] if jsonl else [out]
    if len(set(outputs)) < len(outputs):
        raise UserError(
            f"--jsonl writes {out.with_suffix('.jsonl')} beside the Parquet output: give -o a .parquet path"
        )
    for path in outputs:
        io.check_new(path, overwrite, inputs=[input_path, references, index_dir])

    if index_dir is not None:
        idx = CorpusIndex.open(index_dir)
        tok = load_tokenizer(tokenizer or (idx.tokenizer or {}).get("name") or DEFAULT_TOKENIZER)
        idx.check_tokenizer(tok.identity())
        chunks = _sequence_chunks(input_path, tok, text_field, id_field, max_tokens)
        first = next(chunks, None)  # an empty input is refused before anything is written
        if first is None:
            raise UserError(f"{input_path}: holds no sequences")
        click.echo(f"scanning {input_path} against {idx.n_tokens} indexed tokens…", err=True)
        idx = options.served(idx, engine, ray_address, ray_workers, threads)
        summary = _scan_streamed(idx, itertools.chain([first], chunks), outputs, k, threads).text()
    else:
        tok = load_tokenizer(tokenizer or DEFAULT_TOKENIZER)
        ids, gens = _read_sequences(input_path, tok, text_field, id_field, max_tokens)
        ref_ids, refs = _read_sequences(references, tok, text_field, id_field, max_tokens)
        with progress_bars() as progress:
            table = scan_pairs(
                ids, gens, _align(ids, ref_ids, refs), n=n, threads=threads, progress=progress("scoring", len(ids))
            )
        summary = pairs_summary(table)
        io.commit(dict(zip(outputs, [io.parquet(table), io.jsonl(table)])))
    click.echo(summary)
    click.echo(f"\nwrote {' and '.join(map(str, outputs))}")


def _scan_streamed(idx, chunks, outputs: list[Path], k: int, threads) -> IndexSummary:
    """Scan part by part, each part's rows appended to the outputs (written through
    temporaries, renamed into place at the end): memory stays that of one part."""
    summary = IndexSummary(k)
    with io.staged(outputs) as temps, progress_bars() as progress:
        update = progress("scanning", None)
        parquet: pq.ParquetWriter | None = None
        with contextlib.ExitStack() as stack:
            json_lines = stack.enter_context(open(temps[1], "w", encoding="utf-8")) if len(temps) > 1 else None
            for ids, seqs in chunks:
                table = scan_against_index(idx, ids, seqs, k=k, threads=threads, progress=update)
                if parquet is None:
                    parquet = stack.enter_context(pq.ParquetWriter(temps[0], table.schema))
                parquet.write_table(table)
                if json_lines:
                    io.append_jsonl(table, json_lines)
                summary.add(table)
    return summary


def _sequence_chunks(path, tok, text_field, id_field, max_tokens):
    """(ids, token arrays) of the input's records, SCAN_CHUNK at a time, read as needed."""
    size = SCAN_CHUNK
    ids: list[str] = []
    sequences: list = []
    for record, tokens in tokenize(records_of([path], text_field, id_field), tok, max_tokens=max_tokens):
        ids.append(record.id)
        sequences.append(tokens)
        if len(ids) == size:
            yield ids, sequences
            ids, sequences = [], []
    if ids:
        yield ids, sequences


def _read_sequences(path, tok, text_field, id_field, max_tokens):
    ids, sequences = [], []
    with progress_bars() as progress:
        update = progress("tokenizing", None)
        for chunk_ids, chunk in _sequence_chunks(path, tok, text_field, id_field, max_tokens):
            ids.extend(chunk_ids)
            sequences.extend(chunk)
            update(len(chunk))
    if not ids:
        raise UserError(f"{path}: holds no sequences")
    return ids, sequences


def _align(ids, ref_ids, refs):
    """References in the order of `ids`: by id when every id has one, else by position."""
    by_id = dict(zip(ref_ids, refs))
    if len(by_id) == len(ref_ids) and all(i in by_id for i in ids):
        return [by_id[i] for i in ids]
    if len(ref_ids) != len(ids):
        raise UserError(f"{len(ids)} generations but {len(ref_ids)} references, and their ids do not match")
    return refs
