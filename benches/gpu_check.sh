#!/usr/bin/env bash
# The GPU check in one call on a lent GPU machine (PyTorch and transformers there; no
# network, no Rust toolchain, at most 64 MiB carried). Prepare here, then run there:
#
#   maturin build --release --auditwheel skip -o dist/          # abi3: any Python >= 3.10
#   pip download --no-deps -d dist/deps pyarrow click tqdm      # only what the device lacks
#   run(command="bash benches/gpu_check.sh", carry=["dist"], timeout_s=540)
#
# It installs the carried wheel, checks that memscan's imports resolve, and runs
# benches/gpu_check.py on a GPT-Neo-125M-shaped model built from a config (GPU scores
# against CPU scores, EL against the per-prefix generate loop, one GA epoch with fp32
# master weights); the table goes to stdout and $OUT/gpu_check.json. Under 8 minutes on
# one H100 by design (2 reference sequences: the loop is ~190 generate calls each).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benches/results/gpu}
mkdir -p "$out"
if [ -d dist/deps ]; then
  python -m pip install --quiet --no-index --find-links dist/deps dist/deps/*.whl
fi
python -m pip install --quiet --no-deps --force-reinstall dist/memscan-*.whl
missing=$(python - <<'PY'
import importlib.util
needed = ["numpy", "torch", "transformers", "tokenizers", "pyarrow", "click", "tqdm", "scipy", "sklearn"]
print(" ".join(m for m in needed if importlib.util.find_spec(m) is None))
PY
)
if [ -n "$missing" ]; then
  echo "gpu_check: missing on this machine: $missing (carry their wheels in dist/deps)" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
date -u +"%Y-%m-%d %H:%M UTC"
# run from outside the checkout so that `import memscan` is the installed wheel
timeout 480 python "$PWD/benches/gpu_check.py" --size 125m --reference-sequences 2 --out "$out" \
  | tee "$out/gpu_check.md"
