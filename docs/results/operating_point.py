"""Where to stop unlearning: c(D_f) against the loss of utility, epoch by epoch.

For one built-in model and one of the authors' forget sets (what the model memorized
in pretraining, nothing implanted), runs each weight-changing method at several
learning rates from the same pretrained weights, with the utility guard recording (not
limiting) the perplexity of held-out Pile text after every update. The sets are the
ones the natural-memorization sweep draws for that (size, seed), so the interval is the
sweep's. Writes, into OUT:

- curves.csv: one row per (method, lr, epoch): above / below the interval, mean g,
  held-out perplexity and its ratio to the pretrained model's;
- runs.csv: one row per run: why it stopped, and the first epoch with no forget
  sequence above the interval (the earliest operating point) with its perplexity ratio;
- tradeoff.png: c(D_f) against the perplexity ratio, a panel per method, a line per lr.

Rerun with the same OUT to resume: runs already in runs.csv are kept, not repeated.

    python docs/results/operating_point.py smollm2-135m 4 0 -o docs/results/operating-point
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from memscan.experiment.implant import pretrained_passages
from memscan.experiment.sets import PassageSizes, file_passages, retain_passages
from memscan.model.loading import load_model
from memscan.model.weights import cpu_copy, load_weights
from memscan.plotting import pyplot
from memscan.unlearn import Targets, UnlearnConfig, Unlearning

PAPER_DATA = Path("../shared/paper-data")
METHODS = ("ga", "sga", "ta", "tau", "npo", "gd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("forget_size", type=int)
    parser.add_argument("seed", type=int)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--rates", type=float, nargs="+", default=[1e-5, 5e-5, 2e-4])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--plot-only", action="store_true", help="redraw tradeoff.png from OUT's curves.csv")
    args = parser.parse_args()
    if args.plot_only:
        plot(read_csv(args.out / "curves.csv"), args.out / "tradeoff.png", args.model, args.forget_size, args.seed)
        return
    args.out.mkdir(parents=True, exist_ok=True)

    loaded = load_model(args.model, "cpu")
    forget_file = PAPER_DATA / f"forget/lm_extraction_{args.forget_size}_{args.seed}.csv"
    pile = PAPER_DATA / "validation/pile.csv"
    sizes = PassageSizes(tokens=200, forget=args.forget_size, unseen=64, heldout=16)
    sets = file_passages(loaded, forget_file, pile, sizes, args.seed, id_field="doc_id", min_tokens=101)
    passages = pretrained_passages(loaded, sets)
    retain = retain_passages(loaded, pile, sets, 32, 200, args.seed, id_field="doc_id", min_tokens=101)
    interval = passages.interval
    print(f"interval [{interval.lo:.3f}, {interval.hi:.3f}], mu_u {interval.mu_u:.3f}", flush=True)
    pretrained = cpu_copy(loaded.model)

    curves, runs = read_csv(args.out / "curves.csv"), read_csv(args.out / "runs.csv")
    done = {(r["method"], float(r["lr"])) for r in runs}
    for method in args.methods:
        for lr in args.rates:
            if (method, lr) in done:
                continue
            load_weights(loaded.model, pretrained)
            config = UnlearnConfig(method, lr=lr, max_epochs=args.max_epochs, seed=args.seed)
            started = time.perf_counter()
            state = Unlearning(
                loaded,
                sets.forget[1],
                Targets(interval),
                config,
                retain=retain if config.uses_retain else None,
                guard=sets.heldout[1],
            ).run()
            seconds = time.perf_counter() - started
            baseline = state.records[0].guard_ppl
            clear = None
            for r in state.records:
                g = np.array(r.g)
                row = {
                    "method": method,
                    "lr": lr,
                    "epoch": r.epoch,
                    "phase": r.phase,
                    "above": int((g > interval.hi).sum()),
                    "below": int((g < interval.lo).sum()),
                    "mean_g": float(g.mean()),
                    "guard_ppl": r.guard_ppl,
                    "ppl_ratio": r.guard_ppl / baseline,
                }
                curves.append(row)
                if clear is None and row["above"] == 0:
                    clear = row
            last = curves[-1]
            runs.append(
                {
                    "method": method,
                    "lr": lr,
                    "epochs": state.epoch,
                    "final_above": last["above"],
                    "final_below": last["below"],
                    "final_ppl_ratio": last["ppl_ratio"],
                    "first_clear_epoch": None if clear is None else clear["epoch"],
                    "first_clear_below": None if clear is None else clear["below"],
                    "first_clear_ppl_ratio": None if clear is None else clear["ppl_ratio"],
                    "seconds": seconds,
                    "stopped": state.reason,
                }
            )
            print(runs[-1], flush=True)
            write_csv(args.out / "curves.csv", curves)
            write_csv(args.out / "runs.csv", runs)
    plot(curves, args.out / "tradeoff.png", args.model, args.forget_size, args.seed)


def read_csv(path: Path) -> list[dict]:
    """Rows written by an earlier run, numbers as numbers (so they plot and compare)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None if text == "" else text


def write_csv(path: Path, rows: list[dict]) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(path)


def plot(curves: list[dict], path: Path, model: str, size: int, seed: int) -> None:
    plt = pyplot()
    methods = list(dict.fromkeys(r["method"] for r in curves))
    rates = sorted({r["lr"] for r in curves})
    colours = {lr: f"C{i}" for i, lr in enumerate(rates)}
    columns = min(3, len(methods))
    rows_of_panels = -(-len(methods) // columns)
    figure, axes = plt.subplots(
        rows_of_panels, columns, figsize=(4.2 * columns, 3.2 * rows_of_panels), sharey=True, squeeze=False
    )
    for axis, method in zip(axes.flat, methods):
        for lr in rates:
            rows = [r for r in curves if r["method"] == method and r["lr"] == lr]
            if rows:
                increase = [100 * (r["ppl_ratio"] - 1) for r in rows]
                outside = [r["above"] + r["below"] for r in rows]
                axis.plot(increase, outside, marker="o", color=colours[lr], label=f"lr {lr:g}")
        axis.set_title(method)
        axis.set_xlabel("held-out perplexity increase (%)")
        axis.legend(fontsize="small")
    for axis in axes.flat[len(methods) :]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel("c(D_f): outside the interval")
    figure.suptitle(f"{model}, forget set of {size} (draw {seed}): one point per epoch, from the pretrained model")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
