"""The main job end to end: Warp FEM data -> HCMT and MGN trained -> rollouts checked against the solver -> pictures.

    from meshsim.demo import run_demo
    report = run_demo("runs/demo", quick=True)

Everything goes under one folder (default `runs/demo/`):

    data/train.h5, data/test.h5     impact-plate-2d trajectories from the Warp FEM solver
    hcmt/, mgn/                     training runs (config.resolved.yaml, metrics.csv, checkpoints/)
    rollout_hcmt.h5, rollout_mgn.h5 learned rollouts on the held-out trajectories, ground truth beside them
    eval_hcmt.json, eval_mgn.json   RMSE at steps 1, 50 and all (x1e-3), stress RMSE
    paraview/rollout_hcmt.vtkhdf    the HCMT rollout as a ParaView time series
    rollout_hcmt.gif                a short video: ground truth beside prediction (needs chromium)
    summary.json                    the table printed at the end

Re-running reuses the generated datasets (the generator resumes) and retrains both models from scratch, so the
two models always see the same data and the same wall-clock budget.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from meshsim.errors import OutputError

SCENE = "impact-plate-2d"


@dataclass(frozen=True)
class DemoPlan:
    """Sizes and budgets of one demo run (`quick` fits in about 3 minutes, the full one in about 15)."""

    train_trajectories: int
    test_trajectories: int
    train_minutes: float  # wall-clock budget per model
    workers: int
    render: bool = True

    @staticmethod
    def make(quick: bool) -> DemoPlan:
        cores = os.cpu_count() or 1
        if quick:
            return DemoPlan(train_trajectories=6, test_trajectories=2, train_minutes=0.5, workers=min(2, cores))
        return DemoPlan(train_trajectories=32, test_trajectories=4, train_minutes=5.0, workers=min(4, cores))


def run_demo(out: str | os.PathLike = "runs/demo", quick: bool = False, render: bool = True,
             log: Callable[[str], None] = print, seed: int = 0) -> dict:
    """Run the whole pipeline into `out`; returns the summary (also written to out/summary.json)."""
    from meshsim.config import load_config
    from meshsim.metrics import evaluate_file
    from meshsim.rollout import rollout_file
    from meshsim.scenarios import generate
    from meshsim.train.config import TrainConfig
    from meshsim.train.trainer import train

    plan = DemoPlan.make(quick)
    out = Path(out)
    prepare_output_folder(out)
    started = time.perf_counter()

    log(f"[1/5] simulating {plan.train_trajectories}+{plan.test_trajectories} {SCENE} trajectories with the Warp FEM")
    data = out / "data"
    data.mkdir(exist_ok=True)
    made = [generate(SCENE, num=n, out=data / f"{split}.h5", workers=plan.workers, seed=seed + offset,
                     progress=False)
            for split, n, offset in (("train", plan.train_trajectories, 0), ("test", plan.test_trajectories, 1))]
    solver_frame_seconds = _solver_seconds_per_frame(data / "test.h5", made[1], seed + 1)

    results = {}
    for step, kind in ((2, "hcmt"), (3, "mgn")):
        log(f"[{step}/5] training {kind.upper()} for {plan.train_minutes:g} min of wall-clock time")
        run = out / kind
        if run.exists():
            shutil.rmtree(run)  # retrain from scratch: both models get the same budget on the same data
        cfg = load_config(TrainConfig, _recipe(kind), [
            f"train_data=[{data / 'train.h5'}]", f"valid_data=[{data / 'test.h5'}]",
            # the learning rate falls 10x over the budget, however many steps fit (as in benchmarks/accuracy.py)
            f"time_limit_minutes={plan.train_minutes}", "optim.over_budget=true", "steps=1000000", "val_interval=0",
            f"val_rollouts={plan.test_trajectories}", "checkpoint_interval=200", f"seed={seed}",
        ])
        trained = train(cfg, run_dir=run, show_progress=False)
        ckpt = run / "checkpoints" / ("best.pt" if (run / "checkpoints" / "best.pt").exists() else "last.pt")
        rollout_path = out / f"rollout_{kind}.h5"
        rolled = rollout_file(ckpt, data / "test.h5", rollout_path, force=True)
        report = evaluate_file(rollout_path, json_path=out / f"eval_{kind}.json", plot_path=out / f"eval_{kind}.png")
        results[kind] = {
            "train_steps": trained.step,
            "train_loss": trained.loss,
            "rollout_rmse_p1_x1e3": report["mean"].get("p1"),
            "rollout_rmse_all_x1e3": report["mean"].get("p_all"),
            # metrics scales every RMSE by 1e3 (HCMT's convention); stress is reported here in MPa
            "stress_rmse_all_mpa": None if report["mean"].get("s_all") is None else report["mean"]["s_all"] * 1e-9,
            "rollout_step_seconds": rolled["mean_step_seconds"],
            "speedup_over_solver": solver_frame_seconds / rolled["mean_step_seconds"],
            "rollout": str(rollout_path),
        }

    log("[4/5] exporting the HCMT rollout for ParaView")
    from meshsim.viewer.export import export_trajectory

    (out / "paraview").mkdir(exist_ok=True)
    exported = export_trajectory(out / "rollout_hcmt.h5", "vtkhdf", out / "paraview" / "rollout_hcmt.vtkhdf",
                                 force=True)
    video = None
    if render and plan.render:
        log("[5/5] rendering ground truth beside prediction (headless chromium)")
        video = _render(out / "rollout_hcmt.h5", out / "rollout_hcmt.gif", log)
    summary = {
        "scene": SCENE,
        "plan": asdict(plan),
        "solver_seconds_per_frame": solver_frame_seconds,
        "models": results,
        "paraview": exported,
        "video": video,
        "view_command": f"meshsim view {out / 'rollout_hcmt.h5'}",
        "seconds": time.perf_counter() - started,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def format_summary(summary: dict) -> str:
    """The table printed by `meshsim demo`."""
    rows = [f"{'model':<6} {'steps':>7} {'RMSE-1':>8} {'RMSE-all':>9} {'stress MPa':>11} {'step ms':>8} "
            f"{'speed-up':>9}"]
    for kind, r in summary["models"].items():
        stress = "-" if r["stress_rmse_all_mpa"] is None else f"{r['stress_rmse_all_mpa']:.3g}"
        rows.append(f"{kind.upper():<6} {r['train_steps']:>7} {r['rollout_rmse_p1_x1e3']:>8.3f} "
                    f"{r['rollout_rmse_all_x1e3']:>9.3f} {stress:>11} {1e3 * r['rollout_step_seconds']:>8.2f} "
                    f"{r['speedup_over_solver']:>8.1f}x")
    lines = [
        f"{summary['scene']}: position RMSE x1e-3 m on held-out trajectories; speed-up = Warp FEM seconds per "
        f"frame ({summary['solver_seconds_per_frame'] * 1e3:.1f} ms) over the learned rollout step",
        *rows,
        f"ParaView: {', '.join(map(str, summary['paraview']))}",
    ]
    if summary["video"]:
        lines.append(f"video: {summary['video']}")
    lines.append(f"open it in the browser: {summary['view_command']}")
    return "\n".join(lines)


def prepare_output_folder(out: Path) -> None:
    """Create the output folder of a demo or study, or say in one line why it cannot be used."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} is a file: choose a folder with --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create folder {out} ({err.strerror}): choose another --out") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"folder {out} is not writable: choose another --out")


def _recipe(kind: str) -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("meshsim.data").joinpath(f"train_{kind}_impact_plate.yaml")))


def _solver_seconds_per_frame(path: Path, made: dict, seed: int) -> float:
    """Wall time of the Warp FEM per stored frame, measured on the test trajectories (re-simulated if resumed)."""
    from meshsim.datasets import TrajectoryFile
    from meshsim.scenarios import get_scenario, trajectory_seed

    with TrajectoryFile(path) as f:
        frames = sum(f.num_frames(i) for i in f.ids)
        first = f.ids[0]
        if made["written"] == len(f.ids) and made["simulation_seconds"] > 0:
            return made["simulation_seconds"] / frames
        frames_one = f.num_frames(first)
    # The store was resumed, so nothing was timed: time one trajectory again (same seed, same work).
    scenario = get_scenario(SCENE)
    cfg = scenario.make_config()
    scenario.simulate(cfg, trajectory_seed(seed, 0))  # warm: kernels compiled and loaded
    t0 = time.perf_counter()
    scenario.simulate(cfg, trajectory_seed(seed, 0))
    return (time.perf_counter() - t0) / frames_one


def _render(rollout: Path, video: Path, log: Callable[[str], None]) -> str | None:
    from meshsim.errors import MeshsimError
    from meshsim.viewer.render import render_video

    try:
        render_video(rollout, video, fps=10, size=(960, 400), force=True)
    except MeshsimError as err:  # e.g. chromium not installed: the rest of the demo still stands
        log(f"      no video: {err}")
        return None
    return str(video)
