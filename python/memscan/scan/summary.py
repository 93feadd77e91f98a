"""Readable plain-text tables of per-sequence results for the terminal and reports."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from memscan.tables import format_table


def _clip(text: str | None, width: int = 28) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


@dataclass
class IndexSummary:
    """The terminal summary of `scan_against_index` tables, added part by part: totals and
    the first `limit` rows, so a streamed scan keeps none of its rows in memory."""

    k: int
    limit: int = 20
    sequences: int = 0
    tokens: int = 0
    coverage_sum: float = 0.0
    with_span: int = 0
    head: list[dict] = field(default_factory=list)

    def add(self, table: pa.Table) -> None:
        coverage = table.column("coverage").to_pylist()
        self.sequences += table.num_rows
        self.tokens += sum(table.column("n_tokens").to_pylist())
        self.coverage_sum += sum(coverage)
        self.with_span += sum(1 for c in coverage if c > 0)
        if len(self.head) < self.limit:
            columns = ["id", "n_tokens", "coverage", "longest_match", "n_spans", "top_doc_id"]
            self.head.extend(table.slice(0, self.limit - len(self.head)).select(columns).to_pylist())

    def text(self, markdown: bool = False) -> str:
        k = self.k
        head = (
            f"{self.sequences} sequences, {self.tokens} tokens; "
            f"mean coverage by corpus spans of >= {k} tokens: {self.coverage_sum / max(self.sequences, 1):.3f}; "
            f"{self.with_span} hold such a span"
        )
        body = format_table(
            ["id", "tokens", f"coverage@{k}", "longest match", "spans", "top document"],
            [
                [_clip(r["id"]), r["n_tokens"], r["coverage"], r["longest_match"], r["n_spans"], r["top_doc_id"]]
                for r in self.head
            ],
            markdown,
        )
        more = f"\n… and {self.sequences - len(self.head)} more" if self.sequences > len(self.head) else ""
        return f"{head}\n\n{body}{more}"


def index_summary(table: pa.Table, k: int, limit: int = 20, markdown: bool = False) -> str:
    summary = IndexSummary(k, limit)
    summary.add(table)
    return summary.text(markdown)


def pairs_summary(table: pa.Table, limit: int = 20, markdown: bool = False) -> str:
    score_columns = [c for c in table.column_names if c not in ("id", "n_generation_tokens", "n_reference_tokens")]
    means = [[c, sum(map(float, table.column(c).to_pylist())) / max(table.num_rows, 1)] for c in score_columns]
    head = (
        f"{table.num_rows} pairs: {sum(table.column('exact_match').to_pylist())} exact, "
        f"{sum(table.column('approximate_match').to_pylist())} approximate matches "
        "(edit similarity >= 0.9 or BLEU-4 >= 0.75)"
    )
    shown = [c for c in ("prefix_length", "edit_similarity", "bleu4", "rouge_l_f1") if c in table.column_names]
    per_row = format_table(
        ["id", *shown],
        [[_clip(r["id"]), *(r[c] for c in shown)] for r in table.select(["id", *shown]).to_pylist()[:limit]],
        markdown,
    )
    return f"{head}\n\n{format_table(['score', 'mean'], means, markdown)}\n\n{per_row}"
