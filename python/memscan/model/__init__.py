"""The model side: per-sequence scores that need a causal language model.

- `loading`: built-in offline models, local folders, hub ids (`load_model`, `LoadedModel`).
- `sequences`: forget / unseen sets read and tokenized as the model expects.
- `forward`: one teacher-forced pass (MA, loss, extraction strength, Min-K%++ terms, perplexity).
- `generation`: batched greedy decoding, continuations of many prefixes with reuse.
- `memorization`: the per-sequence table (MA, EL_n, k-extraction, corpus matches) and g.
- `interval`: the acceptable interval from unseen text and c(D_f).
- `training`, `weights`: the loss updates step on, and CPU copies of the weights.
"""

from typing import TYPE_CHECKING

from memscan.lazy import exports

if TYPE_CHECKING:
    from memscan.model.interval import ForgettingQuality, Interval, fit_interval, forgetting_quality
    from memscan.model.loading import LoadedModel, load_model
    from memscan.model.memorization import MemorizationOptions, memorization_table, score_g

__all__ = [
    "ForgettingQuality",
    "Interval",
    "LoadedModel",
    "MemorizationOptions",
    "fit_interval",
    "forgetting_quality",
    "load_model",
    "memorization_table",
    "score_g",
]

__getattr__ = exports(
    __name__,
    {
        "ForgettingQuality": "memscan.model.interval",
        "Interval": "memscan.model.interval",
        "LoadedModel": "memscan.model.loading",
        "MemorizationOptions": "memscan.model.memorization",
        "fit_interval": "memscan.model.interval",
        "forgetting_quality": "memscan.model.interval",
        "load_model": "memscan.model.loading",
        "memorization_table": "memscan.model.memorization",
        "score_g": "memscan.model.memorization",
    },
)
