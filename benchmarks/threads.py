"""Training throughput against torch threads, alone and beside a busy neighbour (one process spinning a core).

    python benchmarks/threads.py            # benchmark-size impact-plate-2d, HCMT recipe, 40 steps per case
    python benchmarks/threads.py --quick    # small scene, 10 steps per case

Each case trains the shipped HCMT recipe in its own process (`meshsim train ... threads=N`) and reports the median
seconds per step from its metrics.csv (data + step, no validation) as steps per minute. The neighbour is a
separate Python process in a busy loop, started before and killed after each "busy" case (on every path). The
automatic choice (`threads=0`, meshsim.threads) is measured too. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--data-dir", default=None, help="where the generated store is kept and reused")
    args = ap.parse_args(argv)
    steps = args.steps or (10 if args.quick else 40)
    cache = Path(args.data_dir or Path(os.environ.get("MESHSIM_CACHE", Path.home() / ".cache" / "meshsim"))
                 / "threads" / ("quick" if args.quick else "benchmark"))
    cache.mkdir(parents=True, exist_ok=True)
    from meshsim.scenarios import generate

    data = cache / "train.h5"
    generate("impact-plate-2d", num=2, out=data, seed=0, overrides=[] if args.quick else ["preset=benchmark"],
             progress=False)
    cases = {}
    load_before = os.getloadavg()[0]
    for busy in (False, True):
        for threads in (1, 2, 0):
            name = f"threads_{threads or 'auto'}_{'busy' if busy else 'alone'}"
            cases[name] = run_case(data, threads, steps, busy, args.quick)
            print(f"{name}: {cases[name]['steps_per_minute']:.0f} steps/min "
                  f"(load {cases[name]['load_average_1min']:.1f})", flush=True)
    out = {"benchmark": "threads", "quick": args.quick, "steps_per_case": steps, "cores": os.cpu_count(),
           "load_average_1min_before": load_before, "cases": cases,
           "busy_over_alone_2_threads": ratio(cases, "threads_2_busy", "threads_2_alone"),
           "busy_over_alone_1_thread": ratio(cases, "threads_1_busy", "threads_1_alone"),
           "busy_over_alone_auto": ratio(cases, "threads_auto_busy", "threads_auto_alone"),
           "note": "ratios are busy / alone steps per minute (1.0 = unaffected by the neighbour)"}
    print(json.dumps(out))
    return out


def ratio(cases: dict, a: str, b: str) -> float:
    return cases[a]["steps_per_minute"] / cases[b]["steps_per_minute"]


def run_case(data: Path, threads: int, steps: int, busy: bool, quick: bool) -> dict:
    neighbour = None
    try:
        if busy:
            neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        with tempfile.TemporaryDirectory() as tmp:
            over = [f"train_data=[{data}]", "valid_data=[]", f"steps={steps}", "warmup_steps=1", "log_interval=1",
                    "val_interval=0", f"checkpoint_interval={steps}", f"threads={threads}", "device=cpu"]
            if quick:
                over += ["model.latent=32", "model.levels=2"]
            env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
            proc = subprocess.run([sys.executable, "-m", "meshsim", "train",
                                   str(ROOT / "data" / "train_hcmt_impact_plate.yaml"), "--run-dir", f"{tmp}/run",
                                   *over], capture_output=True, text=True, env=env, timeout=1800)
            if proc.returncode != 0:
                raise SystemExit(f"training failed: {proc.stderr.strip().splitlines()[-1:]}")
            with open(f"{tmp}/run/metrics.csv") as f:
                seconds = [float(r["seconds_per_step"]) for r in csv.DictReader(f)][2:]  # first steps: set-up
        load = os.getloadavg()[0]
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    median = statistics.median(seconds)
    return {"threads": threads, "busy_neighbour": busy, "median_seconds_per_step": median,
            "steps_per_minute": 60.0 / median, "load_average_1min": load}


if __name__ == "__main__":
    main()
