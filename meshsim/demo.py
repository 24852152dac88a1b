"""The main job end to end: Warp FEM data -> HCMT and MGN trained -> rollouts checked against the solver -> pictures.

    from meshsim.demo import run_demo
    report = run_demo("runs/demo", quick=True)

Everything goes under one folder (default `runs/demo/`):

    data/train.h5, valid.h5, test.h5  impact-plate-2d trajectories (benchmark size) from the Warp FEM solver;
                                      valid.h5 chooses best.pt, test.h5 (another seed) is only evaluated
    hcmt/, mgn/                       training runs (config.resolved.yaml, metrics.csv, checkpoints/)
    rollout_hcmt.h5, rollout_mgn.h5   learned rollouts on the test trajectories, ground truth beside them
    rollout_shipped_*.h5              the same for the pretrained models shipped with meshsim (`meshsim models`)
    eval_*.json, eval_*.png           RMSE beside holding still, by node type and over the rollout
    paraview/rollout_hcmt.vtkhdf      the HCMT rollout as a ParaView time series
    rollout_hcmt.gif                  a short video: ground truth beside prediction (needs chromium)
                                      (a model whose rollout diverges gets a table row saying so; the export
                                      and video then show the first model that did not diverge)
    summary.json                      the table printed at the end

Every learned row of the table stands beside the trivial baselines on the same test frames: holding every node
still and moving it on at its last velocity. Re-running reuses the generated datasets (the generator resumes) and
retrains both models from scratch, so the two models always see the same data and the same budget.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from meshsim.errors import OutputError, RolloutDivergedError

SCENE = "impact-plate-2d"
SCENE_OVERRIDES = ["preset=benchmark"]  # the size the shipped models were trained at
# Starting learning rates for the demo's 5-minute budget (the rate falls 10x over it). The shipped recipes start
# at 1e-3 for 1-2 CPU-hours; in 5 minutes HCMT learns the impactor faster from 2e-3 (3e-3 diverged on one seed of
# three, 6e-3 on both tried), MGN best from its recipe's 1e-3 (docs/training.md, "A five-minute budget").
SHORT_BUDGET_LR = {"hcmt": 2e-3, "mgn": 1e-3}
# The shipped models the demo rolls out, with their table labels: the pair trained on this machine's CPU budget,
# and the best weights shipped (trained on a GPU).
SHIPPED = {"hcmt-impact-plate-2d": "HCMT shipped", "mgn-impact-plate-2d": "MGN shipped",
           "hcmt-impact-plate-2d-gpu": "HCMT shipped (gpu)"}


@dataclass(frozen=True)
class DemoPlan:
    """Sizes and budgets of one demo run (`quick` fits in about 4 minutes, the full one in about 15)."""

    train_trajectories: int
    valid_trajectories: int
    test_trajectories: int
    train_minutes: float  # wall-clock budget per model
    workers: int
    render: bool = True

    @staticmethod
    def make(quick: bool) -> DemoPlan:
        cores = os.cpu_count() or 1
        if quick:
            # one test trajectory: every model's rollout is the slow part of a smoke run (an untrained MGN's
            # world edges make its frames ~1 s each)
            return DemoPlan(train_trajectories=4, valid_trajectories=1, test_trajectories=1, train_minutes=0.5,
                            workers=min(2, cores))
        return DemoPlan(train_trajectories=24, valid_trajectories=2, test_trajectories=8, train_minutes=5.0,
                        workers=min(4, cores))


def run_demo(out: str | os.PathLike = "runs/demo", quick: bool = False, render: bool = True,
             log: Callable[[str], None] = print, seed: int = 0, threads: int = 0) -> dict:
    """Run the whole pipeline into `out`; returns the summary (also written to out/summary.json)."""
    from meshsim.config import load_config
    from meshsim.scenarios import generate
    from meshsim.train.config import TrainConfig
    from meshsim.train.pretrained import registry

    plan = DemoPlan.make(quick)
    out = Path(out)
    prepare_output_folder(out)
    started = time.perf_counter()

    splits = (("train", plan.train_trajectories, 0), ("valid", plan.valid_trajectories, 1),
              ("test", plan.test_trajectories, 2))
    log(f"[1/5] simulating {'+'.join(str(n) for _, n, _ in splits)} {SCENE} trajectories (train+valid+test, "
        "benchmark size) with the Warp FEM")
    data = out / "data"
    data.mkdir(exist_ok=True)
    made = {split: generate(SCENE, num=n, out=data / f"{split}.h5", workers=plan.workers, seed=seed + offset,
                            overrides=SCENE_OVERRIDES, progress=None)
            for split, n, offset in splits}
    test = data / "test.h5"
    solver_frame_seconds = _solver_seconds_per_frame(test, made["test"], seed + 2)

    kinds = ("hcmt", "mgn")
    side_by_side = plan.workers >= 2  # one core each: both models get the same budget in half the wall time
    log(f"[2/5] training {' and '.join(k.upper() for k in kinds)} "
        f"{'side by side (one core each)' if side_by_side else 'one after the other'} for "
        f"{plan.train_minutes:g} min of wall-clock time each")
    runs, cfgs = {}, {}
    for kind in kinds:
        runs[kind] = out / kind
        if runs[kind].exists():
            shutil.rmtree(runs[kind])  # retrain from scratch: both models get the same budget on the same data
        cfgs[kind] = load_config(TrainConfig, _recipe(kind), [
            f"train_data=[{data / 'train.h5'}]", f"valid_data=[{data / 'valid.h5'}]",
            # the learning rate falls 10x over the budget, however many steps fit (as in benchmarks/accuracy.py)
            f"time_limit_minutes={plan.train_minutes}", "optim.over_budget=true", "steps=1000000", "val_interval=0",
            f"optim.lr={SHORT_BUDGET_LR[kind]}",
            f"val_rollouts={plan.valid_trajectories}", "checkpoint_interval=200", f"seed={seed}",
            # side by side, each process takes one thread: two processes with automatic threads would both see
            # two free cores at their start and their OpenMP threads would then wait on each other
            f"threads={threads or (1 if side_by_side else 0)}",
        ])
    trained_steps = _train_models(cfgs, runs, side_by_side)
    log(f"[3/5] rolling the models out on the test trajectories ({plan.test_trajectories})")
    results = {}
    for kind in kinds:
        checkpoints = runs[kind] / "checkpoints"
        ckpt = checkpoints / ("best.pt" if (checkpoints / "best.pt").exists() else "last.pt")
        results[kind] = {
            "label": f"{kind.upper()}, {plan.train_minutes:g} min here", "train_steps": trained_steps[kind],
            **_evaluate(ckpt, test, out, kind, solver_frame_seconds, threads)}
    shipped = registry()
    for name, label in SHIPPED.items():
        if name in shipped:
            log(f"      rolling out the shipped model {name} on the same test trajectories")
            results[f"shipped_{name}"] = {
                "label": label, "train_steps": shipped[name].get("steps"),
                **_evaluate(name, test, out, f"shipped_{name}", solver_frame_seconds, threads)}

    # the rollout shown: the HCMT trained here, or the first model that did not diverge (a 5-minute model can)
    shown = next((tag for tag, r in results.items() if not r["diverged"]), None)
    if shown is None:
        raise RolloutDivergedError("every model's rollout diverged on the test trajectories: train longer "
                                   "(meshsim demo trains 5 minutes; see docs/training.md)")
    if shown != "hcmt":
        log(f"      the HCMT trained here diverged: showing {results[shown]['label']} instead")
    rollout_shown = Path(results[shown]["rollout"])
    log(f"[4/5] exporting the rollout of {results[shown]['label']} for ParaView")
    from meshsim.viewer.export import export_trajectory

    (out / "paraview").mkdir(exist_ok=True)
    exported = export_trajectory(rollout_shown, "vtkhdf", out / "paraview" / f"{rollout_shown.stem}.vtkhdf",
                                 force=True)
    video = None
    if render and plan.render:
        log("[5/5] rendering ground truth beside prediction (headless chromium)")
        video = _render(rollout_shown, out / f"{rollout_shown.stem}.gif", log)
    summary = {
        "scene": SCENE,
        "scene_overrides": SCENE_OVERRIDES,
        "plan": asdict(plan),
        "solver_seconds_per_frame": solver_frame_seconds,
        "models": results,
        "baselines": results[shown]["baselines"],
        "paraview": exported,
        "video": video,
        "view_command": f"{_meshsim()} view {rollout_shown}",
        "seconds": time.perf_counter() - started,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _train_models(cfgs: dict, runs: dict, side_by_side: bool) -> dict[str, int]:
    """Train every model of `cfgs` into its run folder; the steps each one took. Side by side, each trains in its
    own process (spawned clean); an error in either stops both and is raised here."""
    from meshsim.train.trainer import train

    if not side_by_side:
        return {kind: train(cfg, run_dir=runs[kind], show_progress=True).step for kind, cfg in cfgs.items()}
    import multiprocessing

    from meshsim.scenarios.generation import ignore_sigint

    # leaving the block terminates both processes, on every path
    with multiprocessing.get_context("spawn").Pool(len(cfgs), initializer=ignore_sigint) as pool:
        jobs = {kind: pool.apply_async(_train_one, (cfg, runs[kind])) for kind, cfg in cfgs.items()}
        return {kind: job.get() for kind, job in jobs.items()}


def _train_one(cfg, run_dir: Path) -> int:
    from meshsim.train.trainer import train

    return train(cfg, run_dir=run_dir, show_progress=False).step


# A table row's figures and the `meshsim.metrics` means they come from (None in the row of a diverged model).
ROW_FIGURES = {"rollout_rmse_p1_x1e3": "p1", "rollout_rmse_all_x1e3": "p_all", "skill": "skill",
               "plate_rmse_all_x1e3": "NORMAL_p_all", "plate_skill": "NORMAL_skill", "stress_rmse_all_mpa": "s_all",
               "stress_skill": "s_skill",
               "volume_error_pct": "j_all"}  # the strain the predicted mesh implies (meshsim.metrics)


def _evaluate(checkpoint, test: Path, out: Path, tag: str, solver_frame_seconds: float, threads: int) -> dict:
    """Roll `checkpoint` out over `test`, evaluate it beside the trivial baselines; the figures of one table row."""
    from meshsim.metrics import evaluate_file
    from meshsim.rollout import rollout_file

    rollout_path = out / f"rollout_{tag}.h5"
    try:
        rolled = rollout_file(checkpoint, test, rollout_path, force=True, threads=threads)
    except RolloutDivergedError:  # a row that says so (it loses to holding still), not a failed demo
        from meshsim.datasets import TrajectoryFile

        with TrajectoryFile(test) as source, TrajectoryFile(rollout_path) as kept:
            diverged = len(source.ids) - len(kept.ids)
        return {"diverged": diverged, "worse_than_hold": diverged, "rollout": str(rollout_path), "baselines": None,
                **dict.fromkeys(ROW_FIGURES), "rollout_frame_seconds": None, "speedup_over_solver": None}
    report = evaluate_file(rollout_path, json_path=out / f"eval_{tag}.json", plot_path=out / f"eval_{tag}.png")
    m = report["mean"]
    worse = sum(1 for s in report["trajectories"].values() if s.get("skill") is not None and s["skill"] < 0)
    return {
        "diverged": 0,
        **{row_key: m.get(metric) for row_key, metric in ROW_FIGURES.items()},
        "worse_than_hold": worse,
        "rollout_frame_seconds": rolled["mean_step_seconds"],  # a batched step's time / trajectories in the batch
        "speedup_over_solver": solver_frame_seconds / rolled["mean_step_seconds"],
        "rollout": str(rollout_path),
        "baselines": {"hold": {"rollout_rmse_all_x1e3": m.get("p_all_hold"), "plate_rmse_all_x1e3":
                               m.get("NORMAL_p_all_hold"), "stress_rmse_all_mpa": m.get("s_all_hold"),
                               "volume_error_pct": m.get("j_all_hold")},
                      "constant velocity": {"rollout_rmse_all_x1e3": m.get("p_all_cv"),
                                            "plate_rmse_all_x1e3": m.get("NORMAL_p_all_cv")}},
    }


def format_summary(summary: dict) -> str:
    """The table printed by `meshsim demo`: every learned row beside holding still and constant velocity."""

    from meshsim.metrics import skill as skill_of

    def num(value, width, digits=3):
        return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"

    plan = summary["plan"]
    header = (f"{'model':<28} {'steps':>6} {'RMSE-1':>7} {'RMSE-all':>9} {'skill':>6} {'plate':>6} {'p-skill':>7} "
              f"{'stress MPa':>10} {'s-skill':>7} {'J-err %':>7} {'worse':>5} {'ms/frame':>8} {'speed-up':>8}")
    rows = [header]
    for r in summary["models"].values():
        steps = "-" if r.get("train_steps") is None else str(r["train_steps"])
        rows.append(f"{r['label']:<28} {steps:>6} {num(r['rollout_rmse_p1_x1e3'], 7)} "
                    f"{num(r['rollout_rmse_all_x1e3'], 9)} {num(r['skill'], 6, 2)} "
                    f"{num(r['plate_rmse_all_x1e3'], 6, 2)} {num(r['plate_skill'], 7, 2)} "
                    f"{num(r['stress_rmse_all_mpa'], 10, 2)} {num(r['stress_skill'], 7, 2)} "
                    f"{num(r.get('volume_error_pct'), 7, 2)} {r['worse_than_hold']:>3}/{plan['test_trajectories']:<1} "
                    + (f"{1e3 * r['rollout_frame_seconds']:>8.1f} {r['speedup_over_solver']:>7.1f}x"
                       if not r.get("diverged") else f"diverged on {r['diverged']}"))
    hold = summary["baselines"]["hold"]
    for name, b in summary["baselines"].items():
        skill = skill_of(b["rollout_rmse_all_x1e3"], hold["rollout_rmse_all_x1e3"])
        plate_skill = skill_of(b["plate_rmse_all_x1e3"], hold["plate_rmse_all_x1e3"])
        rows.append(f"{name + ' (no model)':<28} {'-':>6} {'-':>7} {num(b['rollout_rmse_all_x1e3'], 9)} "
                    f"{num(skill, 6, 2)} {num(b['plate_rmse_all_x1e3'], 6, 2)} {num(plate_skill, 7, 2)} "
                    f"{num(b.get('stress_rmse_all_mpa'), 10, 2)} {'-':>7} {num(b.get('volume_error_pct'), 7, 2)}")
    lines = [
        f"{summary['scene']} (benchmark size), {plan['test_trajectories']} test trajector"
        f"{'y' if plan['test_trajectories'] == 1 else 'ies'} of a seed used for "
        "neither training nor validation. RMSE x1e-3 m (mm) over all nodes; plate = NORMAL nodes only; skill = "
        "1 - RMSE / RMSE of holding still (> 0 beats doing nothing); worse = test trajectories where the model "
        "loses to holding still; J-err = RMS error of the plate's element areas in % (the strain the predicted "
        f"mesh implies); speed-up = Warp FEM per frame ({summary['solver_seconds_per_frame'] * 1e3:.1f} ms) "
        "over the learned model's time per trajectory and frame (test trajectories rolled out as one batch)",
        *rows,
        f"ParaView: {', '.join(map(str, summary['paraview']))}",
    ]
    if summary["video"]:
        lines.append(f"video: {summary['video']}")
    lines.append(f"open it in the browser: {summary['view_command']}")
    return "\n".join(lines)


def _meshsim() -> str:
    """How to call meshsim in a printed command so that it runs as printed from the current folder."""
    import shutil as _shutil
    import sys

    local = Path(".venv/bin/meshsim")
    if local.exists() and Path(sys.executable).resolve().parent == local.resolve().parent:
        return str(local)
    return "meshsim" if _shutil.which("meshsim") else f"{sys.executable} -m meshsim"


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
