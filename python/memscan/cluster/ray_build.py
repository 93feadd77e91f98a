"""`memscan index build --engine ray`: shards built as Ray tasks, the header written last.

The inputs are cut into slices, one per input (a file, a datasets folder or a built-in
corpus); corpora arrive as many files, so that is where the parallelism is. Each task
reads and tokenizes its slice, cuts it into shards of at most `shard_tokens` tokens,
writes them with the Rust core into `<out>.partial/slice-NNNNN/` and returns their
descriptions (counts, sizes, checksums). The driver then lists every shard in the
header, in input order, and renames the folder into place: a half-built index is never
visible, and documents are numbered as the local build numbers them.

The output must be on a filesystem every worker shares with the driver (NFS, Lustre,
a single machine's disk); a worker that cannot see or write it fails its slice in one
line. A task whose worker dies is run again (`MAX_RETRIES`); a slice folder left by the
dead attempt is replaced.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer

from memscan import _core
from memscan.cluster.ray_session import connect, task_error
from memscan.errors import UserError, core_call
from memscan.scan.index import (
    DEFAULT_SHARD_TOKENS,
    DOCUMENTS_FILE,
    CorpusIndex,
    Document,
    DocumentNames,
    finish_build,
    shard_batches,
)
from memscan.scan.pipeline import documents_of
from memscan.scan.ragged import pack
from memscan.scan.tokenizer import LoadedTokenizer

MAX_RETRIES = 3
PARTIAL_MARKER = ".memscan-partial"  # written by the Rust IndexWriter into the partial folder


@dataclass(frozen=True)
class SliceJob:
    """What one task needs: its input, where to write, and how to read and cut it."""

    number: int
    input: str  # as the user gave it, recorded as the documents' source
    path: str  # where workers read it: absolute, or a built-in corpus name
    work_dir: str
    tokenizer_name: str
    text_field: str
    id_field: str
    split_lines: bool
    max_tokens: int | None
    shard_tokens: int
    threads: int | None

    @property
    def folder(self) -> str:
        return f"slice-{self.number:05}"


@dataclass(frozen=True)
class BuiltSlice:
    """What a task returns: its shards (folder relative to the index, description) and token count."""

    shards: list[tuple[str, str]]
    n_tokens: int


def build_slice(job: SliceJob, tokenizer_json: str) -> BuiltSlice:
    """Runs in a Ray worker: index one slice into `work_dir/slice-NNNNN/`, tokenized by the
    tokenizer `tokenizer_json` defines (shipped once to the object store, not per task)."""
    work_dir = Path(job.work_dir)
    if not (work_dir / PARTIAL_MARKER).exists():
        raise UserError(
            f"{work_dir}: not visible from the Ray worker on {socket.gethostname()}; "
            "the index must be written to a filesystem every worker shares"
        )
    final, temporary = work_dir / job.folder, work_dir / f".{job.folder}.tmp"
    for stale in (final, temporary):  # left by an attempt whose worker died
        shutil.rmtree(stale, ignore_errors=True)
    try:
        temporary.mkdir()
    except OSError as e:
        raise UserError(f"{temporary}: not writable from the Ray worker on {socket.gethostname()} ({e})") from None
    tokenizer = LoadedTokenizer(job.tokenizer_name, Tokenizer.from_str(tokenizer_json))
    read = documents_of([job.path], tokenizer, job.text_field, job.id_field, job.split_lines, job.max_tokens)
    documents = (Document(d.tokens, _as_given(d.source, job), d.id) for d in read)
    names = DocumentNames()
    shards: list[tuple[str, str]] = []
    n_tokens = 0
    for number, batch in enumerate(shard_batches(documents, job.shard_tokens)):
        tokens, offsets = pack([d.tokens for d in batch])
        shard = f"shard-{number:05}"
        piece = core_call(_core.write_shard, str(temporary / shard), tokens, offsets, job.threads)
        shards.append((f"{job.folder}/{shard}", piece))
        names.add(batch)
        n_tokens += int(tokens.size)
    pq.write_table(names.table(), temporary / DOCUMENTS_FILE)
    temporary.rename(final)
    return BuiltSlice(shards, n_tokens)


def _as_given(source: str, job: SliceJob) -> str:
    """A record's source named as in the local build: under the input's name as given."""
    return job.input + source[len(job.path) :] if source.startswith(job.path) else source


def build_index_ray(
    inputs: Sequence[str],
    out: str | Path,
    tokenizer: LoadedTokenizer,
    *,
    address: str | None = None,
    text_field: str = "text",
    id_field: str = "id",
    split_lines: bool = False,
    shard_tokens: int | None = None,
    threads: int | None = None,
    overwrite: bool = False,
    max_tokens: int | None = None,
    progress: Callable[[int], object] | None = None,
    task: Callable[[SliceJob, str], BuiltSlice] = build_slice,
) -> CorpusIndex:
    """The index `build_index` makes of the same inputs (same documents, numbering and
    answers; shards end at input boundaries), built by one Ray task per input, each
    sorting on `threads` threads (1 when None) and reserving as many CPUs.
    `progress(n_tokens)` is told of each finished slice; `task` is what runs per slice."""
    ray = connect(address)
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if (threads or 1) > cpus:
        raise UserError(f"--threads {threads} per Ray task, but the cluster has {cpus} CPUs: no task could start")
    writer = core_call(_core.IndexWriter, str(out), overwrite)
    try:
        jobs = [
            SliceJob(
                number,
                name,
                str(Path(name).resolve()) if Path(name).exists() else name,
                str(Path(writer.work_dir).resolve()),
                tokenizer.name,
                text_field,
                id_field,
                split_lines,
                max_tokens,
                shard_tokens or DEFAULT_SHARD_TOKENS,
                threads or 1,
            )
            for number, name in enumerate(inputs)
        ]
        remote = ray.remote(num_cpus=threads or 1, max_retries=MAX_RETRIES, retry_exceptions=False)(task)
        tokenizer_json = ray.put(tokenizer.tokenizer.to_str())
        built = _gather(ray, [remote.remote(job, tokenizer_json) for job in jobs], progress)
        names = []
        for job, result in zip(jobs, built):
            for folder, piece in result.shards:
                core_call(writer.adopt_shard, folder, piece)
            slice_names = Path(writer.work_dir) / job.folder / DOCUMENTS_FILE
            names.append(pq.read_table(slice_names))
            slice_names.unlink()
        finish_build(writer, pa.concat_tables(names), tokenizer.identity())
    except BaseException:
        writer.abort()
        raise
    return CorpusIndex.open(out)


def _gather(ray, pending: list, progress: Callable[[int], object] | None) -> list[BuiltSlice]:
    """Every task's result in task order; the first failure cancels the rest and is raised."""
    order = {ref: i for i, ref in enumerate(pending)}
    results: list[BuiltSlice | None] = [None] * len(pending)
    waiting = list(pending)
    try:
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            result = ray.get(done[0])
            results[order[done[0]]] = result
            if progress:
                progress(result.n_tokens)
    except Exception as e:
        for ref in waiting:
            ray.cancel(ref, force=True)
        raise task_error(ray, e, "an index slice") from None
    return [r for r in results if r is not None]
