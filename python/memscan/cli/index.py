"""`memscan index build | info`: suffix-array corpus indexes."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from memscan import io
from memscan.cli import options
from memscan.scan.index import CorpusIndex
from memscan.scan.pipeline import build_index, check_inputs
from memscan.scan.tokenizer import DEFAULT_TOKENIZER, load_tokenizer


@click.group()
def index():
    """Build and inspect suffix-array corpus indexes."""


@index.command("build")
@click.argument("inputs", nargs=-1, required=True)
@options.output("Index directory to create.")
@options.tokenizer(DEFAULT_TOKENIZER, "Built-in name, tokenizer.json path, or hub id.")
@options.text_field
@options.id_field
@click.option("--split-lines", is_flag=True, help="Plain text: one document per non-empty line instead of per file.")
@click.option(
    "--shard-tokens", type=options.count(1), default=None, help="Tokens per shard (default 2^30; bounds memory)."
)
@options.max_tokens
@options.threads
@options.overwrite
@options.engine
@options.ray_address
def index_build(
    inputs,
    out,
    tokenizer,
    text_field,
    id_field,
    split_lines,
    shard_tokens,
    max_tokens,
    threads,
    overwrite,
    engine,
    ray_address,
):
    """Index INPUTS (JSONL, CSV, text, Parquet, datasets folders; `kjv` or `transformers-configs` for a built-in corpus) into OUTPUT.

    With --engine ray each input is indexed by its own Ray task (sorting on --threads
    threads, default 1), so give a large corpus as many files; OUTPUT must be on a
    filesystem every worker shares."""
    options.check_engine(engine, ray_address)
    io.check_new(out, overwrite, inputs=inputs)
    check_inputs(inputs)
    tok = load_tokenizer(tokenizer)
    settings = dict(
        text_field=text_field,
        id_field=id_field,
        split_lines=split_lines,
        shard_tokens=shard_tokens,
        threads=threads,
        overwrite=overwrite,
        max_tokens=max_tokens,
    )
    with tqdm(desc="indexing", unit=" tok", unit_scale=True, file=sys.stderr, leave=False, delay=1) as bar:
        if engine == "ray":
            from memscan.cluster.ray_build import build_index_ray

            built = build_index_ray(inputs, out, tok, address=ray_address, progress=bar.update, **settings)
        else:
            built = build_index(inputs, out, tok, progress=lambda docs, tokens: bar.update(tokens), **settings)
    click.echo(
        f"indexed {built.n_documents} documents, {built.n_tokens} tokens into {out} ({built.size_bytes / 2**20:.1f} MiB)"
    )


@index.command("info")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--verify/--no-verify", default=True, show_default=True, help="Check every file's checksum.")
def index_info(directory, verify):
    """Describe an index and check it."""
    idx = CorpusIndex.open(directory, verify=verify)
    h = idx.header
    tok = idx.tokenizer or {}
    click.echo(f"{directory}: memscan index, format {h['format_version']}")
    click.echo(f"  documents  {idx.n_documents}")
    click.echo(f"  tokens     {idx.n_tokens}")
    click.echo(f"  shards     {len(h['shards'])}")
    click.echo(
        f"  size       {idx.size_bytes / 2**20:.1f} MiB ({idx.size_bytes / max(idx.n_tokens, 1):.2f} bytes per token)"
    )
    click.echo(f"  tokenizer  {tok.get('name')} (sha256 {str(tok.get('sha256'))[:12]}…)")
    click.echo(f"  checksums  {'verified' if verify else 'not checked'}")
