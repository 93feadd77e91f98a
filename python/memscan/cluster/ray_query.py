"""Queries fanned out to Ray actors, each memory-mapping a contiguous group of shards.

The local index answers a matching-statistics query shard by shard, keeping at every
position the first shard's span that is strictly longer than those before it. Here
each actor runs exactly that over its own group of shards, and the driver merges the
groups in shard order by the same rule, so the lengths *and* the documents are those
the local index gives. Counts add up over groups. Actors hold no state beyond their
memory maps, so Ray restarts one whose process dies and repeats its call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memscan import _core
from memscan.cluster.ray_session import connect, task_error
from memscan.errors import UserError, core_call
from memscan.scan.index import CorpusIndex
from memscan.scan.ragged import pack

ACTOR_RESTARTS = 2


class ShardServer:
    """Runs in a Ray actor: the shards `shards` of the index at `path`, memory-mapped."""

    def __init__(self, path: str, shards: list[int], threads: int):
        self.index = core_call(_core.CorpusIndex.open, path, False, shards)
        self.threads = threads

    def statistics(self, tokens: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        stats = core_call(self.index.matching_statistics, tokens, offsets, self.threads)
        return stats.lengths, stats.docs

    def count_batch(self, tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return core_call(self.index.count_batch, tokens, offsets, self.threads)


def shard_groups(shard_tokens: Sequence[int], groups: int) -> list[list[int]]:
    """At most `groups` contiguous runs of shard numbers with about equal token counts."""
    total, filled = sum(shard_tokens), 0
    runs: list[list[int]] = []
    current: list[int] = []
    for number, tokens in enumerate(shard_tokens):
        current.append(number)
        filled += tokens
        if filled >= total * (len(runs) + 1) / groups and len(runs) < groups - 1:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


class RayIndex(CorpusIndex):
    """A `CorpusIndex` whose `statistics` and `count_batch` run on Ray actors (everything
    else, such as `locate`, `windows` and the document table, is read locally)."""

    def __init__(self, index: CorpusIndex, address: str | None = None, workers: int | None = None, threads: int = 1):
        super().__init__(index._core, index.path)
        if threads < 1:
            raise UserError("threads per Ray worker must be at least 1")
        self._ray = connect(address)
        cpus = int(self._ray.cluster_resources().get("CPU", 0))
        wanted = workers or max(cpus // threads, 1)
        if wanted * threads > cpus:
            # Ray would wait forever for CPUs to place the rest of the actors on.
            raise UserError(
                f"{wanted} Ray workers of {threads} threads need {wanted * threads} CPUs; the cluster has {cpus}"
            )
        self.groups = shard_groups([s["n_tokens"] for s in self.header["shards"]], wanted)
        server = self._ray.remote(num_cpus=threads, max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS)(
            ShardServer
        )
        path = str(index.path.resolve())
        self._servers = [server.remote(path, group, threads) for group in self.groups]

    def close(self) -> None:
        """Stops the actors (they also stop when this process disconnects from Ray)."""
        for actor in self._servers:
            self._ray.kill(actor)
        self._servers = []

    def __enter__(self) -> RayIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fan_out(self, method: str, queries: Sequence) -> tuple[list, np.ndarray]:
        tokens, offsets = pack(queries)
        shared = (self._ray.put(tokens), self._ray.put(offsets))
        calls = [getattr(actor, method).remote(*shared) for actor in self._servers]
        try:
            return self._ray.get(calls), offsets
        except Exception as e:
            raise task_error(self._ray, e, "a query on the index's shards") from None

    def statistics(self, queries: Sequence, threads: int | None = None) -> _core.MatchingStatistics:
        """As `CorpusIndex.statistics`, merged over the shard groups (`threads` is per
        actor, set when the actors start, so it is ignored here)."""
        answers, offsets = self._fan_out("statistics", queries)
        lengths, docs = (np.array(a) for a in answers[0])
        for group_lengths, group_docs in answers[1:]:
            longer = group_lengths > lengths
            lengths[longer] = group_lengths[longer]
            docs[longer] = group_docs[longer]
        return core_call(_core.MatchingStatistics, lengths, docs, offsets)

    def count_batch(self, ngrams: Sequence, threads: int | None = None) -> np.ndarray:
        answers, _ = self._fan_out("count_batch", ngrams)
        return np.stack(answers).sum(axis=0, dtype=np.uint64)
