"""NCLaw vs baselines: train on one trajectory per material, test reconstruction and out-of-distribution.

For each material (jelly, plasticine, sand, water) a ground-truth trajectory of the training scene is simulated
with the analytic law; three material models are trained on it inside the differentiable MPM:
  nclaw     structured networks (invariant inputs, bias-free, R sym(M)), the method
  plain     the same MLPs on raw F - I with biases (ablation a)
  wrong     an analytic law of the wrong family with fitted E (and nu) (baseline b):
            jelly -> fluid, plasticine/sand/water -> neo_hookean (elastic, no plasticity)
Errors (m^2, mean squared particle position error over every 5th frame) on reconstruction and on the OOD
suites time (2x longer), velocity (new random velocities) and shape (torus, star, blob).
Also times one training epoch (1,000 particles, fwd+bwd); --quick extrapolates it from a shorter rollout.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

MATERIALS = ("jelly", "plasticine", "sand", "water")
WRONG_FAMILY = {"jelly": "fluid", "plasticine": "neo_hookean", "sand": "neo_hookean", "water": "neo_hookean"}


def epoch_seconds(work: Path, steps: int) -> tuple[float, float]:
    """Wall and process-CPU time of one teacher-forced NCLaw training epoch (1,000 particles, `steps` steps)."""
    from meshsim.physics.mpm_bridge import DiffMPM
    from meshsim.scenarios.mpm_generate import generate_ground_truth
    from meshsim.train.nclaw import NCLawTrainConfig, build_material_model, load_ground_truth, run_epoch

    data = work / "timing.h5"
    generate_ground_truth(str(data), ["jelly"], [f"steps={steps}", "spacing=0.05"])
    gt = load_ground_truth(str(data))
    assert gt.x.shape[1] == 1000
    model = build_material_model(NCLawTrainConfig())
    sim = DiffMPM(gt.scene.mpm_config(), gt.mass, gt.vol)
    run_epoch(sim, model, gt, 25, 1, 1e4)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    run_epoch(sim, model, gt, 25, 1, 1e4)
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small scenes and few epochs (minutes, not hours)")
    parser.add_argument("--materials", nargs="+", default=list(MATERIALS))
    parser.add_argument("--work", help="folder for data and runs (default: a temporary folder)")
    parser.add_argument("--epochs", type=int, help="override the number of training epochs")
    parser.add_argument("--steps", type=int, help="override the MPM steps of the training trajectory")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from meshsim.scenarios.mpm_generate import generate_ground_truth
    from meshsim.train.nclaw import NCLawTrainConfig, train_nclaw
    from meshsim.train.nclaw_eval import evaluate

    if args.quick:
        scene = ["steps=100", "spacing=0.0625"]
        train = {"epochs": 6, "teacher_start": 10, "teacher_end": 50, "lr": 1e-2, "lr_plastic": 1e-2}
        eval_kw = {"seeds": (1,)}
        timing_steps = 100
    else:
        scene = ["steps=1000", "spacing=0.05"]
        train = {"epochs": 100, "teacher_start": 25, "teacher_end": 200, "lr": 1e-2, "lr_plastic": 1e-2}
        eval_kw = {"seeds": (1, 7, 8)}
        timing_steps = 1000
    if args.epochs:
        train["epochs"] = args.epochs
    if args.steps:
        scene[0] = f"steps={args.steps}"
    work = Path(args.work or tempfile.mkdtemp(prefix="nclaw_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "gt.h5"
    t0 = time.perf_counter()
    generate_ground_truth(str(data), args.materials, scene)
    print(f"ground truth: {time.perf_counter() - t0:.0f} s", flush=True)
    table = {}
    for material in args.materials:
        row = {}
        for kind in ("nclaw", "plain", "wrong"):
            cfg = NCLawTrainConfig(data=str(data), trajectory=material, model="analytic" if kind == "wrong" else kind,
                                   law=WRONG_FAMILY[material], **train)
            t1 = time.perf_counter()
            run = train_nclaw(cfg, work / f"{material}_{kind}", progress=False)
            res = evaluate([run["checkpoint"]], ("reconstruction", "time", "velocity", "shape"), **eval_kw)
            row[kind] = {**res["summary"][material], "train_loss": run["loss"],
                         "train_seconds": time.perf_counter() - t1}
            print(material, kind, json.dumps(row[kind]), flush=True)
        n, p = row["nclaw"]["ood"], row["plain"]["ood"]
        row["plain_over_nclaw_ood"] = ood_ratio(n, p)
        table[material] = row
    seconds, cpu_seconds = epoch_seconds(work, timing_steps)
    epoch_1k = seconds * 1000 / timing_steps
    ratios = [r["plain_over_nclaw_ood"] for r in table.values()]
    print(json.dumps({
        "quick": args.quick,
        "epochs": train["epochs"],
        "train_scene": scene,
        "work": str(work),
        "materials": table,
        "epoch_seconds_1k_particles_1k_steps": epoch_1k,
        "epoch_cpu_seconds_1k_particles_1k_steps": cpu_seconds * 1000 / timing_steps,
        "epoch_extrapolated_from_steps": timing_steps,
        "goal_epoch_seconds": 10.0,
        "goal_plain_over_nclaw_ood": 10.0,
        "min_plain_over_nclaw_ood": None if any(r is None for r in ratios) else min(ratios),
        "ratio_note": "OOD error of the plain network over NCLaw's; inf: only the plain network diverged, "
                      "0: only NCLaw diverged, null: both diverged",
    }))


def ood_ratio(nclaw_ood, plain_ood):
    """Plain over NCLaw out-of-distribution error; a diverged rollout (None) counts as infinitely wrong."""
    if nclaw_ood is None:
        return None if plain_ood is None else 0.0
    if plain_ood is None:
        return float("inf")
    return plain_ood / nclaw_ood if nclaw_ood > 0 else float("inf")


if __name__ == "__main__":
    main()
