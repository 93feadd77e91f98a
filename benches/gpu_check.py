"""The GPU check (benches/gpu_check.sh runs it): memscan's model path on an accelerator
against the same scores on the CPU, EL against the per-prefix `generate` loop, and one
unlearning epoch with fp32 master weights, on a GPT-Neo-125M-shaped model built from a
config (random weights; no download) that memorizes some sequences in the run.

    python benches/gpu_check.py [--device cuda] [--size 125m|tiny] [--out DIR]

`--size tiny --device cpu` runs the same steps in a minute on a CPU (how it is tested).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from memscan.model.loading import LoadedModel, default_dtype
from memscan.model.memorization import MemorizationOptions, memorization_table
from memscan.unlearn import UnlearnConfig, run_unlearning
from reference_model import el_loop
from tiny_model import memorize

SIZES = {  # GPT-Neo-125M's shape, and a tiny one for CPU runs of this script
    "125m": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "vocab_size": 50257, "tokens": 200},
    "tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "vocab_size": 512, "tokens": 48},
}


def build_model(size: str, seed: int = 0):
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    shape = SIZES[size]
    torch.manual_seed(seed)
    config = GPTNeoConfig(
        vocab_size=shape["vocab_size"],
        hidden_size=shape["hidden_size"],
        num_layers=shape["num_layers"],
        num_heads=shape["num_heads"],
        attention_types=[[["global", "local"], shape["num_layers"] // 2]],
        max_position_embeddings=512,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPTNeoForCausalLM(config)


def tokenizer_for(vocab_size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab_size)}, unk_token="t0"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="t0", bos_token="t0", pad_token="t1")


def scores(loaded: LoadedModel, sequences, n: int) -> dict[str, np.ndarray]:
    table = memorization_table(
        loaded, [str(i) for i in range(len(sequences))], sequences, MemorizationOptions(n=n, k=0)
    )
    return {name: table.column(name).to_numpy() for name in ("ma", f"el_{n}", "loss")}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=list(SIZES), default="125m")
    parser.add_argument("--sequences", type=int, default=32)
    parser.add_argument("--reference-sequences", type=int, default=4, help="EL's per-prefix loop, run in full")
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device, shape = torch.device(args.device), SIZES[args.size]
    T, n, report = shape["tokens"], args.n, {}
    rng = np.random.default_rng(0)
    sequences = [rng.integers(2, shape["vocab_size"], size=T).astype(np.uint32) for _ in range(args.sequences + 24)]
    forget, unseen = sequences[: args.sequences], sequences[args.sequences :]
    tokenizer = tokenizer_for(shape["vocab_size"])

    # memorize part of the forget set to different degrees, in fp32 on the device
    started = time.perf_counter()
    model = build_model(args.size).to(device)
    third = args.sequences // 3
    memorize(
        model,
        forget[:third],
        steps=60 if args.size == "tiny" else 120,
        lr=1e-3,
        weights=[1 + i % 4 for i in range(third)],
    )
    report["memorize_seconds"] = round(time.perf_counter() - started, 1)

    # the same scores on the device (in the dtype load_model picks there) and on the CPU in fp32
    cpu = LoadedModel("cpu", build_model(args.size).eval(), tokenizer, None)
    cpu.model.load_state_dict({k: v.float().cpu() for k, v in model.state_dict().items()})
    accel = LoadedModel(args.device, model.to(default_dtype(device)).eval(), tokenizer, None)
    sync(device)
    started = time.perf_counter()
    on_device = scores(accel, forget, n)
    sync(device)
    report["memscan_ma_el_seconds"] = round(time.perf_counter() - started, 2)
    on_cpu = scores(cpu, forget, n)
    report["dtype_on_device"] = str(default_dtype(device))
    report["ma_mean_device_cpu"] = [round(float(on_device["ma"].mean()), 4), round(float(on_cpu["ma"].mean()), 4)]
    report["ma_max_abs_diff"] = float(np.abs(on_device["ma"] - on_cpu["ma"]).max())
    report["el_max_abs_diff"] = float(np.abs(on_device[f"el_{n}"] - on_cpu[f"el_{n}"]).max())
    report["ma_sequences_differing"] = int((on_device["ma"] != on_cpu["ma"]).sum())

    # EL: the per-prefix generate loop on the first sequences, in full, on the device
    reference = forget[: args.reference_sequences]
    sync(device)
    started = time.perf_counter()
    loop_el = [el_loop(accel, seq, n) for seq in reference]
    sync(device)
    loop_seconds = time.perf_counter() - started
    report["el_loop_seconds_per_sequence"] = round(loop_seconds / len(reference), 2)
    report["memscan_seconds_per_sequence"] = round(report["memscan_ma_el_seconds"] / len(forget), 3)
    report["el_speedup"] = round(report["el_loop_seconds_per_sequence"] / report["memscan_seconds_per_sequence"], 1)
    report["el_loop_vs_memscan_max_abs_diff"] = float(
        np.abs(np.array(loop_el) - on_device[f"el_{n}"][: len(reference)]).max()
    )

    # one GA epoch: bf16 weights on CUDA become fp32 masters; the update must reach them
    before = {k: v.detach().float().cpu().clone() for k, v in accel.model.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        config = UnlearnConfig(method="ga", max_epochs=1)
        started = time.perf_counter()
        run = run_unlearning(
            accel, ([str(i) for i in range(len(forget))], forget), unseen, config, Path(tmp) / "u", log=lambda m: None
        )
        report["unlearning_epoch_seconds"] = round(time.perf_counter() - started, 1)
    after = {k: v.detach().float().cpu() for k, v in accel.model.state_dict().items()}
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    report["unlearning_dtype_after"] = str(next(accel.model.parameters()).dtype)
    report["unlearning_tensors_changed"] = f"{len(changed)} of {len(before)}"
    report["unlearning_reason"] = run["reason"]
    report["device_name"] = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    )
    report["torch"] = torch.__version__

    print("| check | value |\n|---|---|")
    for key, value in report.items():
        print(f"| {key} | {value} |")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
