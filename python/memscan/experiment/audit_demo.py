"""`memscan audit-demo`: the audit end to end on the built-in model, offline, where
the answer is known.

The built-in SmolLM2-135M recites almost nothing verbatim from any corpus that can
ship (measured: README, "What the audit finds"), so the demo makes the memorization
it then audits: it implants a few KJV passages (repeat counts 1/2/4/8, as `memscan
demo` does) into the model, indexes them among many passages that were not
implanted, and runs `memscan audit` on the implanted model against that index. The
implanted passages are the ground truth: `ground_truth.parquet` and `report.md` say
which ones the audit found, at which repeat count, and which the unlearning removed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from memscan import io
from memscan.experiment.audit import AuditInputs, AuditOptions, FindOptions, plan_audit, run_audit
from memscan.experiment.implant import implant, spread_repeats
from memscan.experiment.sets import PassageSizes, kjv_passages
from memscan.model.choices import DEFAULT_MODEL
from memscan.model.loading import load_model
from memscan.progress import progress_bars
from memscan.scan.index import CorpusIndex, Document
from memscan.scan.tokenizer import LoadedTokenizer
from memscan.tables import format_table
from memscan.unlearn.config import UnlearnConfig


@dataclass(frozen=True)
class AuditDemoSettings:
    passages: int = 512  # KJV passages in the corpus
    implanted: int = 16  # of them implanted into the model
    tokens: int = 128  # per passage
    implant_lr: float = 3e-4
    prompts: int = 1000
    fresh_prompts: int = 1000
    method: str = "sga"
    seed: int = 0


def run_audit_demo(out: Path, settings: AuditDemoSettings, overwrite: bool = False, device: str | None = None) -> None:
    io.check_new(out, overwrite)
    if overwrite and out.exists():
        shutil.rmtree(out)
    click.echo(f"loading {DEFAULT_MODEL}…", err=True)
    loaded = load_model(DEFAULT_MODEL, device)
    sizes = PassageSizes(settings.tokens, settings.implanted, settings.passages - settings.implanted, 0)
    sets = kjv_passages(loaded, sizes, settings.seed)
    repeats = spread_repeats(settings.implanted)
    click.echo(f"implanting {settings.implanted} of {settings.passages} KJV passages (repeats 1/2/4/8)…", err=True)
    torch.manual_seed(settings.seed)
    implant(loaded, sets.forget[1], repeats, settings.implant_lr)
    out.mkdir(parents=True)
    loaded.model.save_pretrained(out / "implanted")
    loaded.tokenizer.save_pretrained(out / "implanted")
    ids = [*sets.forget[0], *sets.unseen[0]]
    documents = [Document(t, "kjv", i) for i, t in zip(ids, [*sets.forget[1], *sets.unseen[1]])]
    identity = LoadedTokenizer(DEFAULT_MODEL, loaded.tokenizer.backend_tokenizer).identity()
    index = CorpusIndex.build(documents, out / "corpus.idx", tokenizer=identity)
    del loaded
    options = AuditOptions(
        find=FindOptions(seed=settings.seed),
        prompts=settings.prompts,
        fresh_prompts=settings.fresh_prompts,
    )
    config = UnlearnConfig(method=settings.method, seed=settings.seed)
    inputs = AuditInputs(str(out / "implanted"), index)
    plan = plan_audit(inputs, options)
    with progress_bars() as progress:
        run_audit(inputs, plan, options, config, out / "audit", progress, log=lambda m: click.echo(m, err=True))
    truth = _ground_truth(out / "audit", sets.forget[0], repeats)
    io.write_parquet(truth, out / "ground_truth.parquet")
    report = _report(truth, settings)
    io.write_text(report, out / "report.md")
    io.write_text(json.dumps(asdict(settings), indent=2), out / "settings.json")
    click.echo(report)


def _ground_truth(audit: Path, implanted: list[str], repeats: list[int]) -> pa.Table:
    """Per implanted passage: its repeat count, whether the audit found it, and whether it remained."""
    regions = pq.read_table(audit / "regions.parquet").to_pylist()
    found = {r["doc_id"] for r in regions} | {d for r in regions for d in r["copy_doc_ids"]}
    after_path = audit / "regions_after.parquet"
    remained = set()
    if after_path.exists():
        remained = {r["doc_id"] for r in pq.read_table(after_path).to_pylist() if r["remains"]}
    return pa.table(
        {
            "id": implanted,
            "repeats": repeats,
            "found": [i in found for i in implanted],
            "remained": [i in remained for i in implanted],
        }
    ).append_column(
        "false_regions", pa.array([len([r for r in regions if r["doc_id"] not in implanted])] * len(implanted))
    )


def _report(truth: pa.Table, settings: AuditDemoSettings) -> str:
    rows = truth.to_pylist()
    by_repeats = []
    for level in sorted({r["repeats"] for r in rows}):
        group = [r for r in rows if r["repeats"] == level]
        by_repeats.append([level, len(group), sum(r["found"] for r in group), sum(r["remained"] for r in group)])
    false_regions = rows[0]["false_regions"] if rows else 0
    return "\n".join(
        [
            "# memscan audit-demo",
            "",
            f"{settings.implanted} of {settings.passages} KJV passages ({settings.tokens} tokens each) implanted into "
            f"{DEFAULT_MODEL}; the audit prompted the implanted model with {settings.prompts} windows of the corpus "
            f"and forgot what it found with {settings.method.upper()}. The audit's own report: `audit/report.md`.",
            "",
            format_table(
                ["repeats", "implanted", "found by the audit", "still reproduced after"], by_repeats, markdown=True
            ),
            "",
            f"Regions found outside the implanted passages: {false_regions}.",
            "",
        ]
    )
