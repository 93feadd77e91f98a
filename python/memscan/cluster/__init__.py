"""Past one machine, on engines users already operate.

- `ray_session`: connecting to Ray (an optional extra) with one-line errors.
- `ray_build`: `memscan index build --engine ray`: one Ray task per input slice writes
  its shards into the output's partial folder; the driver lists them in the header last.
- `ray_query`: `RayIndex`, a `CorpusIndex` whose matching statistics and counts fan out
  to actors that each memory-map a contiguous group of shards, merged exactly as the
  local index merges its shards.

Ray is imported only here, and only when an engine is asked for.
"""
