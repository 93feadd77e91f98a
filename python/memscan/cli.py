"""The `memscan` command."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from memscan import cli_model, cli_utility, io
from memscan.errors import IndexCorruptError, UserError
from memscan.index import CorpusIndex
from memscan.pipeline import build_index, records_of, tokenize
from memscan.scan import scan_against_index, scan_pairs
from memscan.summary import index_summary, pairs_summary
from memscan.tokenizer import DEFAULT_TOKENIZER, load_tokenizer


class Memscan(click.Group):
    """Turns every error a user can act on into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (UserError, IndexCorruptError, OSError) as e:
            click.echo(f"memscan: error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("memscan: interrupted", err=True)
            sys.exit(130)


threads_option = click.option("--threads", type=click.IntRange(min=1), default=None, help="Worker threads (default: all cores).")
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace an existing output.")
text_field_option = click.option("--text-field", default="text", show_default=True, help="JSONL/Parquet field holding the text.")
id_field_option = click.option("--id-field", default="id", show_default=True, help="Field holding each record's id.")


@click.group(cls=Memscan, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="memscan")
def main():
    """Measure and remove verbatim memorization in language models, one sequence at a time."""


@main.group()
def index():
    """Build and inspect suffix-array corpus indexes."""


@index.command("build")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path), help="Index directory to create.")
@click.option("--tokenizer", default=DEFAULT_TOKENIZER, show_default=True, help="Built-in name, tokenizer.json path, or hub id.")
@text_field_option
@id_field_option
@click.option("--split-lines", is_flag=True, help="Plain text: one document per non-empty line instead of per file.")
@click.option("--shard-tokens", type=click.IntRange(min=1), default=None, help="Tokens per shard (default 2^30; bounds memory).")
@threads_option
@overwrite_option
def index_build(inputs, out, tokenizer, text_field, id_field, split_lines, shard_tokens, threads, overwrite):
    """Index INPUTS (JSONL, text, Parquet, datasets folders; `kjv` for the built-in corpus) into OUTPUT."""
    io.check_new(out, overwrite)
    tok = load_tokenizer(tokenizer)
    with tqdm(desc="indexing", unit=" tok", unit_scale=True, file=sys.stderr) as bar:
        built = build_index(
            inputs, out, tok, text_field=text_field, id_field=id_field, split_lines=split_lines,
            shard_tokens=shard_tokens, threads=threads, overwrite=overwrite, progress=lambda docs, tokens: bar.update(tokens),
        )
    click.echo(f"indexed {built.n_documents} documents, {built.n_tokens} tokens into {out} ({built.size_bytes / 2**20:.1f} MiB)")


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
    click.echo(f"  size       {idx.size_bytes / 2**20:.1f} MiB ({idx.size_bytes / max(idx.n_tokens, 1):.2f} bytes per token)")
    click.echo(f"  tokenizer  {tok.get('name')} (sha256 {str(tok.get('sha256'))[:12]}…)")
    click.echo(f"  checksums  {'verified' if verify else 'not checked'}")


@main.command()
@click.argument("input_path", metavar="INPUT")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Score free generations against this corpus index.")
@click.option("--references", type=str, help="Score aligned pairs against these references (same id, or same order).")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), help="Parquet file to write [default: INPUT stem + .scores.parquet].")
@click.option("--jsonl", is_flag=True, help="Also write the table as JSONL beside the Parquet file.")
@click.option("--k", type=click.IntRange(min=1), default=32, show_default=True, help="Span length that counts as a corpus match.")
@click.option("--n", type=click.IntRange(min=0), default=10, show_default=True, help="n of the n-gram overlap for pairs (0: skip).")
@click.option("--tokenizer", default=None, help="Tokenizer [default: the index's, else smollm2-135m].")
@text_field_option
@id_field_option
@threads_option
@overwrite_option
def score(input_path, index_dir, references, out, jsonl, k, n, tokenizer, text_field, id_field, threads, overwrite):
    """Score the sequences in INPUT for verbatim and approximate memorization."""
    if (index_dir is None) == (references is None):
        raise UserError("give exactly one of --index DIR (free generations) or --references FILE (aligned pairs)")
    out = out or Path(Path(input_path).name.split(".")[0] + ".scores.parquet")
    io.check_new(out, overwrite)
    if jsonl:
        io.check_new(out.with_suffix(".jsonl"), overwrite)

    if index_dir is not None:
        idx = CorpusIndex.open(index_dir)
        tok = load_tokenizer(tokenizer or (idx.tokenizer or {}).get("name") or DEFAULT_TOKENIZER)
        idx.check_tokenizer(tok.identity())
        ids, seqs = _read_sequences(input_path, tok, text_field, id_field)
        click.echo(f"scanning {len(seqs)} sequences against {idx.n_tokens} indexed tokens…", err=True)
        table = scan_against_index(idx, ids, seqs, k=k, threads=threads)
        summary = index_summary(table, k)
    else:
        tok = load_tokenizer(tokenizer or DEFAULT_TOKENIZER)
        ids, gens = _read_sequences(input_path, tok, text_field, id_field)
        ref_ids, refs = _read_sequences(references, tok, text_field, id_field)
        refs = _align(ids, ref_ids, refs)
        table = scan_pairs(ids, gens, refs, n=n, threads=threads)
        summary = pairs_summary(table)

    io.write_parquet(table, out)
    if jsonl:
        io.write_jsonl(table, out.with_suffix(".jsonl"))
    click.echo(summary)
    click.echo(f"\nwrote {out}" + (f" and {out.with_suffix('.jsonl')}" if jsonl else ""))


def _read_sequences(path, tok, text_field, id_field):
    records = list(records_of([path], text_field, id_field))
    if not records:
        raise UserError(f"{path}: holds no sequences")
    pairs = list(tokenize(tqdm(records, desc="tokenizing", unit=" seq", file=sys.stderr, leave=False), tok))
    return [r.id for r, _ in pairs], [t for _, t in pairs]


def _align(ids, ref_ids, refs):
    """References in the order of `ids`: by id when every id has one, else by position."""
    by_id = dict(zip(ref_ids, refs))
    if len(by_id) == len(ref_ids) and all(i in by_id for i in ids):
        return [by_id[i] for i in ids]
    if len(ref_ids) != len(ids):
        raise UserError(f"{len(ids)} generations but {len(ref_ids)} references, and their ids do not match")
    return refs


@main.command("scan-demo")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=Path("memscan-scan-demo"), show_default=True)
@threads_option
@overwrite_option
def scan_demo(out, threads, overwrite):
    """The scanner alone on built-in data: index the KJV, scan texts against it, write a report."""
    from memscan.demo_scan import run_demo

    run_demo(out, threads=threads, overwrite=overwrite)


for command in (cli_model.memorization, cli_model.attack, cli_model.unlearn, cli_model.demo, cli_utility.eval_command, cli_utility.sweep):
    main.add_command(command)


if __name__ == "__main__":
    main()
