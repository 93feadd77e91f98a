"""A utility evaluation's files: utility.parquet/.csv/.md and one table of items per task."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from memscan import io
from memscan.eval.evaluate import UtilityResult
from memscan.tables import format_table


def write_utility(result: UtilityResult, out: Path) -> None:
    """utility.parquet/.csv/.md (one row per task and metric) and items_<task>.parquet."""
    io.write_parquet(result.metrics, out / "utility.parquet")
    io.write_text(result.metrics.to_pandas().to_csv(index=False), out / "utility.csv")
    io.write_text(utility_table(result.metrics, markdown=True) + "\n", out / "utility.md")
    for task, table in result.items.items():
        io.write_parquet(table, out / f"items_{task.replace('/', '_')}.parquet")


def utility_table(metrics: pa.Table, markdown: bool = False) -> str:
    rows = [
        [
            r["task"],
            r["metric"],
            r["value"],
            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
            f"{r['items']}/{r['items_total']}",
        ]
        for r in metrics.to_pylist()
    ]
    return format_table(["task", "metric", "value", "95% CI", "items"], rows, markdown)
