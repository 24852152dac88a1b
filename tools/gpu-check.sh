#!/usr/bin/env bash
# One GPU check: on a machine with a CUDA GPU, build a CUDA venv, run the CUDA tests and the GPU benchmarks
# (FEM, MPM, kernels, learned train + rollout steps, NCLaw epoch, learned at benchmark size) in under 8 minutes, write one JSON of results.
#   tools/gpu-check.sh [OUT.json]        (default: gpu-check.json)
# Environment: GPU_VENV (default .venv-gpu), TORCH_INDEX (default https://download.pytorch.org/whl/cu128),
#              TORCH_SPEC (default torch==2.13.0), BUDGET_S (default 480, the whole run),
#              GPU_PY: a python that already has a CUDA torch, Warp and meshsim installed (a machine with no
#              network); with it no venv is made and nothing is installed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check.json}
VENV=${GPU_VENV:-.venv-gpu}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cu128}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
BUDGET_S=${BUDGET_S:-480}

# Fail fast, in one line, where there is no GPU (before any install).
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "gpu-check: no CUDA GPU on this machine (nvidia-smi finds none); run it where one is" >&2
    exit 3
fi

START=$(date +%s)
LOGS=$(mktemp -d -t gpu-check.XXXXXX)
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }

if [ -n "${GPU_PY:-}" ]; then
    PY=$GPU_PY
else
    if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV" || exit 1; fi
    PY="$VENV/bin/python"
    "$PY" -m pip install -q "$TORCH_SPEC" --index-url "$TORCH_INDEX" >"$LOGS/pip.log" 2>&1 &&
        "$PY" -m pip install -q -e ".[dev]" >>"$LOGS/pip.log" 2>&1 || { tail -5 "$LOGS/pip.log" >&2; echo "gpu-check: install failed (log: $LOGS/pip.log)" >&2; exit 1; }
fi
if ! "$PY" -c 'import torch, warp as wp, sys; wp.init(); sys.exit(0 if torch.cuda.is_available() and wp.is_cuda_available() else 1)' >"$LOGS/probe.log" 2>&1; then
    echo "gpu-check: torch or Warp cannot use the GPU (torch build or driver): $(tail -1 "$LOGS/probe.log")" >&2
    exit 3
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} WARP_CACHE_PATH=${WARP_CACHE_PATH:-$HOME/.cache/warp}

# step NAME SECONDS CMD...: run with a timeout (never past the budget), keep its log and its last JSON line.
STEPS=()
step() {
    local name=$1 limit=$2; shift 2
    local l; l=$(left); [ "$l" -lt "$limit" ] && limit=$l
    if [ "$limit" -le 5 ]; then echo "gpu-check: $name skipped (time budget spent)" >&2; STEPS+=("$name|124|0"); return; fi
    local t0; t0=$(date +%s)
    timeout "$limit" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err"; local rc=$?
    echo "gpu-check: $name rc=$rc in $(( $(date +%s) - t0 )) s" >&2
    STEPS+=("$name|$rc|$(( $(date +%s) - t0 ))")
}

step tests_cuda 200 "$PY" -m pytest -q -p no:cacheprovider -k "cuda" tests/kernels tests/physics tests/models tests/train
step bench_fem 45 "$PY" benchmarks/fem.py --quick --device cuda:0
step bench_mpm 45 "$PY" benchmarks/mpm.py --quick --device cuda
step bench_kernels_tests 45 "$PY" -m pytest -q -p no:cacheprovider -k cuda tests/kernels --durations=0
step bench_learned 60 "$PY" benchmarks/learned.py --quick --device cuda
step bench_nclaw_epoch 60 "$PY" -c 'import json, sys, tempfile, pathlib; sys.path.insert(0, "benchmarks")
from nclaw import epoch_seconds
wall, cpu = epoch_seconds(pathlib.Path(tempfile.mkdtemp()), 100, device="cuda")
print(json.dumps({"nclaw_epoch_100_steps_wall_s": wall, "cpu_s": cpu}))'
# Last, as it is the longest: benchmark size, with the shipped HCMT's rollouts and its 16-point study.
step bench_learned_full 150 "$PY" benchmarks/learned.py --device cuda

"$PY" - "$OUT" "$LOGS" "$(( $(date +%s) - START ))" "${STEPS[@]}" <<'PYEOF'
import json, subprocess, sys, pathlib
out, logs, total, steps = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
import torch, warp
result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
          "warp": warp.__version__, "seconds": total, "logs": str(logs), "steps": {}}
for entry in steps:
    name, rc, secs = entry.split("|")
    text = (logs / f"{name}.out").read_text() if (logs / f"{name}.out").exists() else ""
    last = next((l for l in reversed(text.splitlines()) if l.startswith("{")), None)
    try:
        data = json.loads(last) if last else None
    except ValueError:
        data = None
    tail = [l for l in text.splitlines() if l.strip()][-1:] or [""]
    result["steps"][name] = {"rc": int(rc), "seconds": int(secs), "result": data if data is not None else tail[0]}
result["ok"] = all(s["rc"] == 0 for s in result["steps"].values())
pathlib.Path(out).write_text(json.dumps(result, indent=1) + "\n")
print(json.dumps({"ok": result["ok"], "out": out, "seconds": total}))
sys.exit(0 if result["ok"] else 1)
PYEOF
