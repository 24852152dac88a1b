"""`meshsim demo nclaw`: learn a jelly's constitutive law from its motion, then use it on a new shape.

    from meshsim.demo_nclaw import run_nclaw_demo
    summary = run_nclaw_demo("runs/demo-nclaw", quick=True)

Steps, all under one folder (default `runs/demo-nclaw/`):

1. `gt.h5`: a jelly cube thrown into a box, simulated by the Warp MLS-MPM with the analytic corotated law.
2. `jelly/`: the NCLaw elasticity network fitted inside the differentiable MPM to those particle positions
   (teacher-forced segments, position loss), `checkpoint.pt` and `metrics.csv`.
3. `eval.json`: the learned law against the true one on the training motion (reconstruction) and on a torus,
   a star and a blob it never saw (new shape), as NCLaw's mean squared position error.

Re-running resumes: the ground truth is kept and training continues from its checkpoint up to the epoch count.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from meshsim.demo import prepare_output_folder

MATERIAL = "jelly"


@dataclass(frozen=True)
class NCLawDemoPlan:
    steps: int  # MPM steps of the training motion (dt 5e-4 s)
    epochs: int
    eval_steps: int

    @staticmethod
    def make(quick: bool) -> NCLawDemoPlan:
        return NCLawDemoPlan(steps=100, epochs=4, eval_steps=100) if quick else \
            NCLawDemoPlan(steps=400, epochs=30, eval_steps=400)


def run_nclaw_demo(out: str | os.PathLike = "runs/demo-nclaw", quick: bool = False, seed: int = 0,
                   log=print) -> dict:
    from meshsim.scenarios.mpm_generate import generate_ground_truth
    from meshsim.train.nclaw import NCLawTrainConfig, train_nclaw
    from meshsim.train.nclaw_eval import evaluate

    plan = NCLawDemoPlan.make(quick)
    out = Path(out)
    prepare_output_folder(out)
    started = time.perf_counter()

    log(f"[1/3] simulating a {MATERIAL} cube for {plan.steps} MPM steps with the analytic law")
    generate_ground_truth(str(out / "gt.h5"), [MATERIAL], overrides=[f"steps={plan.steps}"], seed=seed)

    log(f"[2/3] fitting the NCLaw network inside the differentiable MPM ({plan.epochs} epochs)")
    cfg = NCLawTrainConfig(data=str(out / "gt.h5"), trajectory=MATERIAL, epochs=plan.epochs, seed=seed,
                           teacher_start=min(25, plan.steps), teacher_end=min(100, plan.steps))
    trained = train_nclaw(cfg, out / MATERIAL, resume=True, progress=False)

    log("[3/3] evaluating on the training motion and on new shapes")
    results = evaluate([trained["checkpoint"]], suites=("reconstruction", "shape"), out=str(out / "eval.json"),
                       steps=plan.eval_steps)
    cases = results["materials"][MATERIAL]
    return {
        "material": MATERIAL,
        "epochs": trained["epochs"],
        "loss": trained["loss"],
        "seconds_per_epoch": trained["seconds_per_epoch"],
        "reconstruction_mse": {k: v["mse"] for k, v in cases["reconstruction"].items()},
        "new_shape_mse": {k: v["mse"] for k, v in cases["shape"].items()},
        "checkpoint": trained["checkpoint"],
        "ground_truth": str(out / "gt.h5"),
        "seconds": time.perf_counter() - started,
    }


def format_summary(summary: dict) -> str:
    def mse(v):
        return "diverged" if v is None else f"{v:.3e}"

    lines = [f"NCLaw {summary['material']}: {summary['epochs']} epochs, {summary['seconds_per_epoch']:.1f} s per "
             f"epoch, final loss {summary['loss']:.4g}",
             "mean squared particle position error against the analytic law (m^2):"]
    lines += [f"  reconstruction {name:<12} {mse(v)}" for name, v in summary["reconstruction_mse"].items()]
    lines += [f"  new shape      {name:<12} {mse(v)}" for name, v in summary["new_shape_mse"].items()]
    lines.append(f"checkpoint: {summary['checkpoint']}; particles: meshsim view {summary['ground_truth']}")
    return "\n".join(lines)
