"""Run every benchmark (quick or full) and write benchmarks/RESULTS.md: machine, date, figures, goals, met or not.

    python benchmarks/run_all.py [--quick] [--only kernels,fem] [--out benchmarks/RESULTS.md]

Each benchmark is a script in this folder that prints one JSON object as its last line. Benchmarks run one at a
time (they measure wall-clock speed), each in its own process. A benchmark that fails is reported as failed with
the end of its output; the others still run. The JSON of every run is kept beside the table (results.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Script name -> extra arguments for the full run (quick runs pass --quick).
BENCHMARKS = {
    "datastore": [],
    "kernels": [],
    "fem": ["--dataset"],
    "mpm": [],
    "learned": [],
    "viewer": [],
    "nclaw": [],  # default: 512 particles, 200 steps, 30 epochs per model (~10 min on 2 cores; paper size: hours)
    "accuracy": ["--budget-minutes", "15", "--seeds", "2"],  # one seed is not evidence: seeds swing the ratio 0.6-1.1
}

# metric -> (comparison, target, where the goal comes from)
GOALS = {
    "radius_speedup_vs_dense_20k": (">=", 50, "issue 4"),
    "radius_time_ratio_vs_ckdtree_20k": ("<=", 1.5, "issue 4"),
    "attention_speedup_vs_torch_300k": (">=", 3, "issue 4"),
    "attention_peak_mem_ratio_300k": ("<=", 0.5, "issue 4"),
    "tet_elem_substeps_per_s": (">=", 3e7, "issue 3"),
    "impact_plate_dataset_120_seconds": ("<=", 1800, "issue 3"),
    "fwd_particle_substeps_per_s_20k": (">=", 8e6, "issue 6"),
    "fwdbwd_particle_substeps_per_s_20k": (">=", 1.6e6, "issue 6"),
    "epoch_seconds_1k_particles_1k_steps": ("<=", 10, "issue 6"),
    "min_plain_over_nclaw_ood": (">=", 10, "issue 6"),
    "hcmt_over_mgn_train_step_time": ("<=", 1.0, "issue 5"),
    "solver_over_hcmt_frame_time": (">=", 20, "issue 5"),
    "hcmt_over_mgn_rollout_rmse": ("<=", 0.6, "issue 5"),
    "first_frame_ms_10k": ("<", 1000, "issue 7"),
    "scrub_fps_10k": (">=", 30, "issue 7"),
}


def machine_summary() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for module in ("torch", "warp", "numpy", "scipy"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # a missing optional package is reported, not fatal
            versions[module] = "missing"
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_gib, 1), "gpu": gpu,
            "os": platform.platform(), "python": platform.python_version(), **versions}


def run_one(name: str, quick: bool, timeout: float) -> dict:
    script = HERE / f"{name}.py"
    if not script.exists():
        return {"status": "missing"}
    args = [sys.executable, str(script)] + (["--quick"] if quick else BENCHMARKS[name])
    load = os.getloadavg()[0]  # other work on the machine disturbs the timings: recorded beside them
    start = time.perf_counter()
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timed out after {timeout:.0f} s", "seconds": timeout, "load": load}
    seconds = time.perf_counter() - start
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    try:
        figures = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
    except json.JSONDecodeError:
        figures = None
    if not isinstance(figures, dict):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"status": f"failed (exit {proc.returncode}): {' | '.join(tail)}", "seconds": seconds, "load": load}
    return {"status": "ok", "seconds": seconds, "figures": figures, "load": load, "args": args[2:],
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes")}


def verdict(metric: str, value) -> tuple[str, str]:
    if metric not in GOALS:
        return "", ""
    op, target, source = GOALS[metric]
    if not isinstance(value, (int, float)):
        return f"{op} {target:g} ({source})", "n/a"
    met = {">=": value >= target, "<=": value <= target, "<": value < target, ">": value > target}[op]
    return f"{op} {target:g} ({source})", "met" if met else "NOT met"


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def write_report(results: dict, machine: dict, quick: bool, out: Path) -> None:
    """Write RESULTS.md; figures of benchmarks not run this time are kept from the previous results.json."""
    previous = out.with_name("results.json")
    if previous.exists():
        try:
            kept = json.loads(previous.read_text()).get("results", {})
        except (json.JSONDecodeError, OSError):
            kept = {}
        results = {**{k: v for k, v in kept.items() if k not in results}, **results}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        f"Written by `benchmarks/run_all.py` on {now}. Each benchmark's last row gives its wall time, the load",
        "average when it started and its arguments; the date of each run is in results.json.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        "| benchmark | metric | value | goal | met |",
        "|---|---|---|---|---|",
    ]
    for name, result in results.items():
        if result["status"] != "ok":
            lines.append(f"| {name} | — | {result['status']} | | |")
            continue
        for metric, value in result["figures"].items():
            goal, met = verdict(metric, value)
            lines.append(f"| {name} | `{metric}` | {fmt(value)} | {goal} | {met} |")
        lines.append(f"| {name} | (wall time s; 1-min load average at start; arguments) | {result['seconds']:.1f}; "
                     f"{result['load']:.2f}; `{' '.join(result['args']) or '(none)'}` | | |")
    out.write_text("\n".join(lines) + "\n")
    out.with_name("results.json").write_text(json.dumps({"machine": machine, "quick": quick, "results": results},
                                                        indent=1, default=str))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run each benchmark's --quick mode")
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    results = {}
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = run_one(name, args.quick, args.timeout)
        print(f"  {name}: {results[name]['status']}", file=sys.stderr, flush=True)
    machine = machine_summary()
    write_report(results, machine, args.quick, args.out)
    met = sum(verdict(m, v)[1] == "met" for r in results.values() for m, v in r.get("figures", {}).items())
    missed = sum(verdict(m, v)[1] == "NOT met" for r in results.values() for m, v in r.get("figures", {}).items())
    failed = [n for n, r in results.items() if r["status"] != "ok"]
    print(json.dumps({"benchmarks": len(results), "failed": failed, "goals_met": met, "goals_missed": missed,
                      "report": str(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
