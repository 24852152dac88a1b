"""Fit a constitutive model inside the differentiable MPM from one particle trajectory (NCLaw training).

One epoch = one pass over the trajectory split into teacher-forced segments: every segment restarts from the
ground-truth MPM state (x, v, C, F) stored in the file and rolls the model forward; the loss is the mean squared
particle-position error over all frames (times `loss_scale`). Segments are independent (the restart cuts the
graph), so each one is backpropagated as soon as it is simulated and memory holds one segment only. The segment
length grows from `teacher_start` to `teacher_end` frames over training on a cosine schedule. Adam, per-model
gradient-norm clipping, cosine learning-rate decay, a checkpoint (plain state dicts, weights_only) after every
epoch, resume from it, tqdm progress and metrics.csv.

Models: `nclaw` (structured networks), `plain` (ablation), `analytic` (the parameters of an analytic law, e.g.
the wrong family as a baseline).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from meshsim import __version__
from meshsim.config import from_dict, to_dict
from meshsim.errors import CheckpointError, ConfigError, DataFormatError
from meshsim.models.checkpoint import read_nclaw_checkpoint as load_checkpoint
from meshsim.models.checkpoint import write_checkpoint
from meshsim.outputs import make_folder
from meshsim.train.config import check_device
from meshsim.train.logging import MetricsLog

CHECKPOINT = "checkpoint.pt"
COLUMNS = ["epoch", "loss", "segment", "grad_norm", "seconds"]  # metrics.csv, one row per epoch


@dataclass
class NCLawTrainConfig:
    data: str = ""  # HDF5 store written by `meshsim nclaw generate`
    trajectory: str = ""  # trajectory id in it; empty = the first
    model: str = "nclaw"  # nclaw | plain | analytic
    law: str = "neo_hookean"  # model=analytic: the law family whose E (and nu) are fitted
    widths: list[int] = field(default_factory=lambda: [64, 64])
    stress_scale: float = 1e5  # Pa per unit network output
    plastic_alpha: float = 1e-3
    epochs: int = 100
    lr: float = 3e-3  # elasticity (or analytic parameters)
    lr_plastic: float = 3e-3
    clip_grad: float = 1.0  # max gradient norm per module
    loss_scale: float = 1e4
    teacher_start: int = 25  # segment length in frames at the first epoch
    teacher_end: int = 200  # ... and at the last
    frames: int = 0  # use the first `frames` frames only (0 = all)
    update: str = "segment"  # optimizer step after every segment, or once per "epoch" (as the paper)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N: where the MPM, the model and the frames live

    def __post_init__(self):
        if self.model not in ("nclaw", "plain", "analytic"):
            raise ConfigError(f"model must be nclaw, plain or analytic, got {self.model!r}")
        if self.epochs < 1 or self.teacher_start < 1 or self.teacher_end < self.teacher_start:
            raise ConfigError("epochs >= 1 and 1 <= teacher_start <= teacher_end are required")
        if not self.widths or min(self.widths) < 1:
            raise ConfigError(f"widths must be positive layer sizes, got {self.widths}")
        for name in ("stress_scale", "plastic_alpha", "lr", "lr_plastic", "clip_grad", "loss_scale"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.update not in ("segment", "epoch"):
            raise ConfigError(f"update must be segment or epoch, got {self.update!r}")
        if self.frames < 0 or self.frames == 1:
            raise ConfigError(f"frames must be 0 (all) or >= 2, got {self.frames}")
        check_device(self.device)


def build_material_model(cfg: NCLawTrainConfig):
    """The trainable material: a ConstitutiveModel (nclaw/plain) or an analytic law with free parameters."""
    if cfg.model == "analytic":
        from meshsim.physics.materials import make_material

        law = make_material(cfg.law)
        law.log_E.requires_grad_(True)
        if cfg.law != "fluid":
            law.nu.requires_grad_(True)
        return law
    from meshsim.models.nclaw import build_model

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, tuple(cfg.widths), cfg.stress_scale, cfg.plastic_alpha)
    # Start from a stress-free material: zero output layers (their gradient is not zero).
    for net in (model.elasticity, model.plasticity):
        torch.nn.init.zeros_(net.mlp[-1].weight)
        if net.mlp[-1].bias is not None:
            torch.nn.init.zeros_(net.mlp[-1].bias)
    return model


def param_groups(model, cfg: NCLawTrainConfig):
    if cfg.model == "analytic":
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr}]
    return [
        {"params": list(model.elasticity.parameters()), "lr": cfg.lr},
        {"params": list(model.plasticity.parameters()), "lr": cfg.lr_plastic},
    ]


@dataclass
class GroundTruth:
    """A trajectory's frames as tensors plus what is needed to rebuild its simulator."""

    x: torch.Tensor  # [T, N, 3]
    v: torch.Tensor
    C: torch.Tensor  # [T, N, 3, 3]
    F: torch.Tensor
    mass: np.ndarray
    vol: np.ndarray
    scene: object  # MPMSceneConfig
    material: str
    traj_id: str

    def to(self, device) -> GroundTruth:
        """The same frames on `device` (the simulator's)."""
        return replace(self, **{k: getattr(self, k).to(device) for k in ("x", "v", "C", "F")})


def load_ground_truth(path: str, traj_id: str = "", frames: int = 0) -> GroundTruth:
    from meshsim.datasets import TrajectoryFile
    from meshsim.scenarios.mpm_blob import build_scene, scene_config_from_attrs

    if not path:
        raise ConfigError("data is empty: pass the HDF5 file written by `meshsim nclaw generate`")
    with TrajectoryFile(path) as f:
        if not f.ids:
            raise DataFormatError(f"{path} holds no trajectory: generate one with `meshsim nclaw generate`")
        traj_id = traj_id or f.ids[0]
        if traj_id not in f.ids:
            raise DataFormatError(f"{path} has no trajectory {traj_id!r}; it has {', '.join(f.ids[:5])}")
        traj = f.read(traj_id)
    missing = [k for k in ("velocity", "C", "F") if k not in traj.fields]
    if missing:
        raise DataFormatError(
            f"{path}: trajectory {traj_id} lacks field {missing[0]!r}: regenerate it with store_state=true")
    scene_cfg = scene_config_from_attrs(traj.attrs)
    if len(scene_cfg.bodies) != 1 and len({b.material for b in scene_cfg.bodies}) != 1:
        raise DataFormatError(f"{path}: trajectory {traj_id} mixes materials; train on a single-material trajectory")
    scene = build_scene(scene_cfg, int(traj.attrs.get("seed", 0)))
    T = traj.num_frames if frames == 0 else min(frames, traj.num_frames)
    n = traj.num_nodes

    def t(a, shape):
        return torch.as_tensor(np.ascontiguousarray(a[:T])).reshape(T, n, *shape)

    return GroundTruth(t(traj.world_pos, (3,)), t(traj.fields["velocity"], (3,)), t(traj.fields["C"], (3, 3)),
                       t(traj.fields["F"], (3, 3)), scene.mass, scene.vol, scene_cfg, scene.materials[0], traj_id)


def segment_length(cfg: NCLawTrainConfig, epoch: int) -> int:
    """Teacher-forcing segment length (frames): cosine ramp from teacher_start to teacher_end."""
    if cfg.epochs == 1:
        return cfg.teacher_start
    w = 0.5 * (1 - math.cos(math.pi * epoch / (cfg.epochs - 1)))
    return int(round(cfg.teacher_start + w * (cfg.teacher_end - cfg.teacher_start)))


def run_epoch(sim, model, gt: GroundTruth, seg_len: int, frame_every: int, loss_scale: float, train: bool = True,
              after_segment=None):
    """Teacher-forced pass over the trajectory; accumulates gradients segment by segment (calling
    `after_segment()` after each backward, e.g. an optimizer step). Returns the loss."""
    from meshsim.physics.mpm import MPMState

    T = gt.x.shape[0] - 1  # frames to predict
    total = 0.0
    for start in range(0, T, seg_len):
        k = min(seg_len, T - start)
        state = MPMState(gt.x[start], gt.v[start], gt.C[start], gt.F[start])
        with torch.set_grad_enabled(train):
            xs, _ = sim.rollout(state, model, k * frame_every)
            pred = xs[frame_every - 1 :: frame_every]
            loss = loss_scale * ((pred - gt.x[start + 1 : start + 1 + k]) ** 2).mean(-1).mean(-1).sum() / T
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is not finite in the segment starting at frame {start}")
        if train:
            loss.backward()
            if after_segment is not None:
                after_segment()
        total += float(loss.detach())
    return total


def _without_device(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "device"}


def model_from_checkpoint(ckpt: dict):
    cfg = from_dict(NCLawTrainConfig, ckpt["config"], where="checkpoint config")
    model = build_material_model(cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, TypeError) as err:  # weights of another architecture, or none
        raise CheckpointError(f"checkpoint weights do not fit its config ({type(err).__name__}): "
                              "retrain it with `meshsim nclaw train`") from None
    model.requires_grad_(False)
    return model, cfg


def train_nclaw(cfg: NCLawTrainConfig, out_dir: str | Path, resume: bool = True, progress: bool | None = None) -> dict:
    """Train; returns {"epochs", "loss", "seconds_per_epoch", "checkpoint"}. Resumes from out_dir/checkpoint.pt."""
    from tqdm import tqdm

    from meshsim.physics.mpm import DiffMPM
    from meshsim.train.distributed import resolve_device

    device = resolve_device(cfg.device)
    out = Path(out_dir)
    make_folder(out)
    gt = load_ground_truth(cfg.data, cfg.trajectory, cfg.frames).to(device)
    model = build_material_model(cfg).to(device)
    opt = torch.optim.Adam(param_groups(model, cfg))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    start, history = 0, []
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        if _without_device(ckpt["config"]) != _without_device(to_dict(cfg)):  # a run may move between devices
            raise CheckpointError(f"{ckpt_path} was trained with another config: use a new output folder "
                                  "or --no-resume")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start, history = int(ckpt["epoch"]), list(ckpt["history"])
    # metrics.csv starts over from the checkpoint's history: rows an interrupted run logged after its last
    # checkpoint would otherwise repeat
    log = MetricsLog(out / "metrics.csv", COLUMNS, key="epoch")
    for row in history:
        log.write(row["epoch"], row)
    sim = DiffMPM(gt.scene.mpm_config(), gt.mass, gt.vol, device=str(device))
    modules = [model] if cfg.model == "analytic" else [model.elasticity, model.plasticity]
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc=f"nclaw {gt.material}",
               disable=not show)
    for epoch in bar:
        t0 = time.perf_counter()
        norms: list[float] = []

        def update(norms=norms):
            norms.extend(float(torch.nn.utils.clip_grad_norm_(m.parameters(), cfg.clip_grad)) for m in modules)
            opt.step()
            opt.zero_grad()

        opt.zero_grad()
        seg = segment_length(cfg, epoch)
        loss = run_epoch(sim, model, gt, seg, gt.scene.frame_every, cfg.loss_scale,
                         after_segment=update if cfg.update == "segment" else None)
        if cfg.update == "epoch":
            update()
        sched.step()
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": loss, "segment": seg, "grad_norm": max(norms), "seconds": seconds}
        history.append(row)
        log.write(epoch + 1, row)
        write_checkpoint(ckpt_path, {
            "kind": "nclaw", "version": __version__, "config": to_dict(cfg), "material": gt.material,
            "scene_config": to_dict(gt.scene), "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "epoch": epoch + 1, "history": history})
        bar.set_postfix(loss=f"{loss:.3e}", seg=seg)
    bar.close()
    log.close()
    last = history[-1] if history else {"loss": float("nan"), "seconds": 0.0}
    return {"epochs": len(history), "loss": last["loss"], "seconds_per_epoch": last["seconds"],
            "material": gt.material, "checkpoint": str(ckpt_path)}
