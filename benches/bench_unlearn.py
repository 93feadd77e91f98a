"""Unlearning epoch time and peak memory of each method on the built-in model.

Builds the demo's setting (KJV passages of --tokens tokens implanted into the
model, saved to a temporary folder; forget / unseen sets as token-id JSONL), then
runs `memscan unlearn` with the default settings once per method in a fresh process
for at most --epochs epochs (checkpoints included, as a user's run has them) and
reads back run.json's seconds per epoch and the run's peak resident memory (and
peak CUDA memory on a GPU).

    python benches/bench_unlearn.py [--epochs 3] [--tokens 64] [--forget 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from memscan.experiment.demo import DemoSettings
from memscan.experiment.implant import implant, spread_repeats
from memscan.experiment.sets import kjv_passages
from memscan.model.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--forget", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    settings = DemoSettings(model=args.model, tokens=args.tokens, forget_size=args.forget)
    loaded = load_model(args.model, args.device)
    sets = kjv_passages(loaded, settings.sizes, settings.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        implant(loaded, sets.forget[1], spread_repeats(args.forget), settings.implant_lr)
        loaded.model.save_pretrained(tmp / "implanted")
        loaded.tokenizer.save_pretrained(tmp / "implanted")
        del loaded
        for name in ("forget", "unseen"):
            ids, seqs = getattr(sets, name)
            (tmp / f"{name}.jsonl").write_text(
                "".join(json.dumps({"id": i, "tokens": s.tolist()}) + "\n" for i, s in zip(ids, seqs))
            )
        for method in ("ga", "sga", "ta", "tau"):
            out = tmp / method
            command = [
                sys.executable,
                "-m",
                "memscan.cli",
                "unlearn",
                str(tmp / "implanted"),
                "--forget",
                str(tmp / "forget.jsonl"),
                "--unseen",
                str(tmp / "unseen.jsonl"),
                "--method",
                method,
                "--max-epochs",
                str(args.epochs),
                "-o",
                str(out),
            ] + (["--device", args.device] if args.device else [])
            subprocess.run(command, check=True, capture_output=True)
            run = json.loads((out / "run.json").read_text())
            timed = run["update_epoch_seconds"]
            row = {
                "method": method,
                "updates": run["updates"],
                "seconds_per_update_epoch": sum(timed) / max(len(timed), 1),
                "peak_rss_mib": run["peak_rss_mib"],
                "peak_cuda_mib": run["peak_cuda_mib"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(
            json.dumps({"model": args.model, "forget": args.forget, "tokens": args.tokens, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
