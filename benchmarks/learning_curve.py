"""Learning curve: held-out rollout error of a training run's CPU-minute snapshots, beside holding still.

    python benchmarks/learning_curve.py runs/hcmt_impact_plate --test datasets/impact-plate-2d/test.h5
    python benchmarks/learning_curve.py RUN_A RUN_B --test test.h5 --plot curve.png
    python benchmarks/learning_curve.py --quick            # a tiny run trained here, to check that it all works

A run trained with `snapshot_cpu_minutes: [5, 15, 45, 120]` keeps `checkpoints/cpu_<m>min.pt` (and `last.pt`
at the end); each is rolled out over every test trajectory and scored as `meshsim eval` does (RMSE-all over all
nodes and over the plate's NORMAL nodes, with the hold-still baseline and skill). A straight line through the
last points on log-log axes says what budget a target would need; `extrapolate` reports it for skill targets.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = re.compile(r"cpu_([0-9.]+)min\.pt$")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", help="run folders holding checkpoints/cpu_<m>min.pt")
    ap.add_argument("--test", help="held-out trajectories (HDF5)")
    ap.add_argument("--plot", default=None, help="PNG of RMSE-all and plate RMSE against CPU minutes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="train a tiny model for seconds and score its snapshots")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.quick:
        runs, test = [quick_run(Path(tempfile.mkdtemp(prefix="curve-")))], None
        test = runs[0].parent / "data.h5"
    else:
        if not args.runs or not args.test:
            ap.error("pass run folders and --test (or --quick)")
        runs, test = [Path(r) for r in args.runs], Path(args.test)
    load = [os.getloadavg()[0]]
    curves = {str(run): curve(run, test) for run in runs}
    load.append(os.getloadavg()[0])
    if args.plot:
        plot(curves, Path(args.plot))
    out = {"benchmark": "learning_curve", "quick": args.quick, "test": str(test), "threads": args.threads,
           "load_average_1min": load, "curves": curves,
           "note": "RMSE x1e-3 m; skill = 1 - RMSE / hold-still RMSE; cpu_minutes = training CPU time"}
    print(json.dumps(out))
    return out


def snapshots(run: Path) -> list[tuple[float, Path]]:
    """(CPU minutes, checkpoint) of a run, in order; last.pt at its recorded CPU time."""
    from meshsim.train.checkpoint import read_checkpoint

    found = []
    for path in (run / "checkpoints").glob("cpu_*min.pt"):
        match = SNAPSHOT.search(path.name)
        if match:
            found.append((float(read_checkpoint(path).get("cpu_seconds", 60 * float(match.group(1)))) / 60, path))
    last = run / "checkpoints" / "last.pt"
    if last.is_file():
        found.append((float(read_checkpoint(last).get("cpu_seconds", math.nan)) / 60, last))
    return sorted(found)


def curve(run: Path, test: Path) -> list[dict]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from accuracy import evaluate

    from meshsim.train.checkpoint import read_checkpoint

    points = []
    for minutes, path in snapshots(run):
        r = evaluate(path, test, "cpu")
        points.append({"checkpoint": path.name, "cpu_minutes": round(minutes, 2),
                       "step": int(read_checkpoint(path)["step"]),
                       **{k: r.get(k) for k in ("p1", "p_all", "p_all_hold", "skill", "NORMAL_p_all",
                                                "NORMAL_p_all_hold", "NORMAL_skill", "s_all", "s_all_hold",
                                                "s_skill", "worse_than_hold", "diverged")}})
        print(f"{run.name} {path.name}: {minutes:.1f} CPU min, step {points[-1]['step']}, p_all {r.get('p_all')}, "
              f"skill {r.get('skill')}, plate skill {r.get('NORMAL_skill')}", flush=True)
    return points


def extrapolate(points: list[dict], key: str, target: float) -> float | None:
    """CPU minutes at which a power law through the last two points' error reaches `target` x hold-still."""
    good = [p for p in points if p.get(key) is not None and p.get(f"{key}_hold") and p[key] > 0]
    if len(good) < 2:
        return None
    (m0, e0), (m1, e1) = [(p["cpu_minutes"], p[key] / p[f"{key}_hold"]) for p in good[-2:]]
    if not (m1 > m0 > 0 and e1 < e0):
        return None
    slope = math.log(e1 / e0) / math.log(m1 / m0)
    return float(m1 * (target / e1) ** (1 / slope))


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, title in ((axes[0], "p_all", "all nodes"), (axes[1], "NORMAL_p_all", "plate (NORMAL nodes)")):
        for run, points in curves.items():
            xs = [p["cpu_minutes"] for p in points if p.get(key) is not None]
            ax.plot(xs, [p[key] for p in points if p.get(key) is not None], "o-", label=Path(run).name)
            holds = [p[f"{key}_hold"] for p in points if p.get(f"{key}_hold") is not None]
            if holds:
                ax.axhline(float(np.mean(holds)), color="r", ls="--", lw=1)
        ax.axhline(np.nan, color="r", ls="--", lw=1, label="hold still")
        ax.set_xscale("log")
        ax.set_xlabel("training CPU minutes")
        ax.set_ylabel("rollout RMSE-all x1e-3 m")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def quick_run(tmp: Path) -> Path:
    """A few seconds of training on a tiny synthetic store, with snapshots."""
    sys.path.insert(0, str(ROOT / "tests" / "train"))
    from test_train import synthetic_store, tiny_config

    from meshsim.train.trainer import train

    data = synthetic_store(tmp / "data.h5", num=2, frames=8)
    cfg = tiny_config(tmp, data, steps=10**6, threads=1, cpu_limit_minutes=0.03, snapshot_cpu_minutes=[0.01, 0.02],
                      val_interval=0)
    train(cfg, show_progress=False)
    return tmp / "run"


if __name__ == "__main__":
    main()
