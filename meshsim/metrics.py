"""Rollout error metrics, defined as in HCMT's evaluation code, and the `meshsim eval` report.

For a rollout that starts from `history` ground-truth frames, step k (k = 1..h) is frame `history - 1 + k`.

    RMSE_k = sqrt( mean over ALL nodes of ||x_hat_k - x_k||^2 )        (squared norm over components)
    p1     = RMSE_1,   p50 = mean(RMSE_1..RMSE_50),   p_all = mean(RMSE_1..RMSE_h)

reported x1e3 (HCMT's tables print position RMSE "x1e-3"; with metres that is mm). Stress is treated alike
(s1, s50, s_all) and reported in MPa (the file stores Pa); other scalar fields in the file's unit. As in HCMT's
code (a slice of the first 50 steps), p50 is the mean over the steps there are when the rollout has fewer than 50
(then p50 = p_all; "steps" says how many).

Every learned figure comes with its trivial baselines, computed on the same frames: "hold" (every node stays at
the last input frame; the stress stays at the last input stress) and "cv" (constant velocity: every node moves on
with its last input velocity). `skill = 1 - p_all / p_all_hold` (> 0: better than holding still). The same
numbers per node type (`NORMAL_p_all`, `NORMAL_p_all_hold`, `NORMAL_skill`, ...) split the error between, say,
the plate (NORMAL) and the ball (OBSTACLE). With obstacles, `p_before`, `p_during`, `p_after` (and `*_hold`) split
the steps by contact phase of the ground truth (`contact_frames`).

Positions can be close while the mesh between them is not: `j1`, `j_all` (and `j_all_hold`, `j_skill`) are the
RMS error, in percent, of every deformable element's volume (area in 2D) over its reference volume, J = det F:
the strain the predicted mesh implies. Elements touching an OBSTACLE node are left out (rigid or kinematic
there); meshes of non-simplex cells have no such figure.

    from meshsim.metrics import evaluate_file
    report = evaluate_file("rollout.h5", json_path="eval.json", plot_path="eval.png")
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from meshsim.errors import DataFormatError, OutputError
from meshsim.outputs import atomic_path, write_atomic

SCALE = 1e3  # HCMT reports RMSE x1e-3, i.e. the number printed is RMSE * 1e3
FIELD_SCALES = {"stress": 1e-6}  # Pa -> MPa; other fields keep SCALE
VOLUME_SCALE = 100.0  # element volume ratio errors in percent
HISTORY_ATTR = "rollout_history_frames"


def rmse_per_step(pred: np.ndarray, true: np.ndarray, history: int = 2) -> np.ndarray:
    """RMSE_k for k = 1..h: `pred`/`true` are [T, N, C] or [T, N]; frames before `history` are inputs."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise DataFormatError(f"prediction shape {pred.shape} differs from ground truth {true.shape}")
    if pred.ndim == 2:
        pred, true = pred[..., None], true[..., None]
    sq = ((pred[history:] - true[history:]) ** 2).sum(axis=-1)  # [h, N]
    return np.sqrt(sq.mean(axis=1))


def summarize(rmse: np.ndarray, prefix: str, scale: float = SCALE) -> dict[str, float | None]:
    """{prefix1, prefix50, prefix_all} from RMSE_k (k = 1..h), multiplied by `scale` (default x1e3)."""
    h = len(rmse)
    if h == 0:
        return {f"{prefix}1": None, f"{prefix}50": None, f"{prefix}_all": None}
    return {
        f"{prefix}1": float(rmse[0] * scale),
        f"{prefix}50": float(rmse[:50].mean() * scale),
        f"{prefix}_all": float(rmse.mean() * scale),
    }


def trivial_predictions(world_pos: np.ndarray, history: int = 2) -> dict[str, np.ndarray]:
    """Predictions that learn nothing, starting from the same `history` ground-truth frames as a rollout:
    "hold" keeps every node at the last input frame, "cv" moves it on with its last input velocity."""
    x = np.asarray(world_pos, dtype=np.float64)
    steps = np.maximum(np.arange(x.shape[0], dtype=np.float64) - (history - 1), 0.0)[:, None, None]
    hold = np.broadcast_to(x[history - 1], x.shape).copy()
    cv = x[history - 1] + steps * (x[history - 1] - x[history - 2])
    hold[:history], cv[:history] = x[:history], x[:history]
    return {"hold": hold, "cv": cv}


def element_volume_ratios(world_pos: np.ndarray, mesh_pos: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """[T, M] J = det(F) of each simplex cell in each frame: its volume (area in 2D) over its reference one."""
    from meshsim.mesh import signed_measure

    cells = np.asarray(cells)
    return np.stack([signed_measure(frame, cells) for frame in np.asarray(world_pos)]) / signed_measure(mesh_pos,
                                                                                                          cells)


def deformable_cells(cells: np.ndarray, node_type: np.ndarray, dim: int) -> np.ndarray | None:
    """Simplex cells without an OBSTACLE node (the deformable body's elements); None when cells are not simplices
    or none is left."""
    from meshsim.datasets.schema import NodeType

    cells = np.asarray(cells)
    if cells.ndim != 2 or cells.shape[1] != dim + 1:
        return None
    keep = cells[(np.asarray(node_type).reshape(-1)[cells] != NodeType.OBSTACLE).all(axis=1)]
    return keep if len(keep) else None


def contact_frames(cells, mesh_pos, node_type, world_pos) -> np.ndarray | None:
    """[T] bool: frames in which some OBSTACLE node lies within 0.75 x the median mesh edge length of the
    deformable body from one of its nodes; None without obstacle nodes."""
    from scipy.spatial import cKDTree

    from meshsim.datasets.schema import NodeType
    from meshsim.mesh import edges_from_cells

    node_type = np.asarray(node_type).reshape(-1)
    obstacle = node_type == NodeType.OBSTACLE
    body = ~obstacle
    if not obstacle.any() or not body.any():
        return None
    senders, receivers = edges_from_cells(np.asarray(cells))
    inside = body[senders] & body[receivers]
    mesh_pos = np.asarray(mesh_pos)
    gap = 0.75 * float(np.median(np.linalg.norm(mesh_pos[senders[inside]] - mesh_pos[receivers[inside]], axis=-1)))
    return np.array([cKDTree(frame[body]).query(frame[obstacle], distance_upper_bound=gap)[0].min() < gap
                     for frame in np.asarray(world_pos)])


def contact_phases(touching: np.ndarray, history: int = 2) -> np.ndarray:
    """Phase of each rollout step k = 1..h from the ground truth's contact frames: 0 before the first contact,
    1 from the first to the last contact frame, 2 after it."""
    steps = touching[history:]
    phase = np.ones(len(steps), dtype=np.int64)
    hits = np.flatnonzero(touching)
    if hits.size == 0:
        return np.zeros(len(steps), dtype=np.int64)
    frame = np.arange(history, len(touching))
    phase[frame < hits[0]] = 0
    phase[frame > hits[-1]] = 2
    return phase


PHASES = ("before", "during", "after")


def field_scale(name: str) -> float:
    return FIELD_SCALES.get(name, SCALE)


def skill(rmse_all: float | None, hold_all: float | None) -> float | None:
    """1 - RMSE / RMSE of holding still: 1 is perfect, 0 is no better than doing nothing, < 0 is worse."""
    if rmse_all is None or hold_all is None or not hold_all > 0 or not math.isfinite(rmse_all):
        return None
    return 1.0 - rmse_all / hold_all


@dataclass
class TrajectoryMetrics:
    traj_id: str
    steps: int
    position_rmse: np.ndarray  # [h], unscaled
    field_rmse: dict[str, np.ndarray] = field(default_factory=dict)
    baseline_rmse: dict[str, np.ndarray] = field(default_factory=dict)  # "hold", "cv" positions; "<field>_hold"
    type_rmse: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # node type -> {"model", "hold", "cv"}
    phase: np.ndarray | None = None  # [h] contact phase of each step (contact_phases), None without obstacles
    volume_rmse: np.ndarray | None = None  # [h] RMS error of the deformable elements' J (baseline: "volume_hold")

    def summary(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {"steps": self.steps}
        out.update(summarize(self.position_rmse, "p"))
        for name in ("hold", "cv"):
            if name in self.baseline_rmse:
                out[f"p_all_{name}"] = summarize(self.baseline_rmse[name], "p")["p_all"]
        out["skill"] = skill(out["p_all"], out.get("p_all_hold"))
        for name, rmse in self.field_rmse.items():
            prefix = "s" if name == "stress" else f"{name}_"
            out.update(summarize(rmse, prefix, field_scale(name)))
            if f"{name}_hold" in self.baseline_rmse:
                hold = summarize(self.baseline_rmse[f"{name}_hold"], prefix, field_scale(name))[f"{prefix}_all"]
                out[f"{prefix}_all_hold"] = hold
                out[f"{prefix}_skill"] = skill(out[f"{prefix}_all"], hold)
        for type_name, curves in self.type_rmse.items():
            for name, rmse in curves.items():
                suffix = "" if name == "model" else f"_{name}"
                out[f"{type_name}_p_all{suffix}"] = summarize(rmse, "p")["p_all"]
            out[f"{type_name}_skill"] = skill(out[f"{type_name}_p_all"], out.get(f"{type_name}_p_all_hold"))
        if self.volume_rmse is not None:
            out.update({k: v for k, v in summarize(self.volume_rmse, "j", VOLUME_SCALE).items() if k != "j50"})
            out["j_all_hold"] = summarize(self.baseline_rmse["volume_hold"], "j", VOLUME_SCALE)["j_all"]
            out["j_skill"] = skill(out["j_all"], out["j_all_hold"])
        if self.phase is not None:  # mean RMSE over the steps of each contact phase, model and hold
            for i, name in enumerate(PHASES):
                steps = self.phase == i
                for label, rmse in (("", self.position_rmse), ("_hold", self.baseline_rmse.get("hold"))):
                    ok = rmse is not None and steps.any()
                    out[f"p_{name}{label}"] = float(rmse[steps].mean() * SCALE) if ok else None
        return out


def evaluate_trajectory(traj, traj_id: str = "") -> TrajectoryMetrics:
    """Metrics of one rollout trajectory (`meshsim.datasets.Trajectory` with `pred_world_pos`), with the trivial
    baselines on the same frames and the position error split by node type."""
    from meshsim.datasets.schema import NodeType

    if traj.pred_world_pos is None:
        raise DataFormatError(f"trajectory {traj_id}: no pred/world_pos; pass a rollout file (meshsim rollout)")
    history = int(traj.attrs.get(HISTORY_ATTR, 2))
    metrics = TrajectoryMetrics(traj_id, traj.world_pos.shape[0] - history,
                                rmse_per_step(traj.pred_world_pos, traj.world_pos, history))
    trivial = trivial_predictions(traj.world_pos, history) if traj.world_pos.shape[0] >= history >= 2 else {}
    for name, pred in trivial.items():
        metrics.baseline_rmse[name] = rmse_per_step(pred, traj.world_pos, history)
    for name, pred in sorted(traj.pred_fields.items()):
        if name in traj.fields:
            true = traj.fields[name]
            metrics.field_rmse[name] = rmse_per_step(pred, true, history)
            held = np.broadcast_to(true[history - 1], true.shape).copy()
            metrics.baseline_rmse[f"{name}_hold"] = rmse_per_step(held, true, history)
    node_type = np.asarray(traj.node_type).reshape(-1)
    body = deformable_cells(traj.cells, node_type, traj.world_pos.shape[-1])
    if body is not None and "hold" in trivial:
        true_j = element_volume_ratios(traj.world_pos, traj.mesh_pos, body)
        metrics.volume_rmse = rmse_per_step(element_volume_ratios(traj.pred_world_pos, traj.mesh_pos, body), true_j,
                                            history)
        metrics.baseline_rmse["volume_hold"] = rmse_per_step(
            element_volume_ratios(trivial["hold"], traj.mesh_pos, body), true_j, history)
    touching = contact_frames(traj.cells, traj.mesh_pos, node_type, traj.world_pos)
    if touching is not None:
        metrics.phase = contact_phases(touching, history)
    moving = [t for t in np.unique(node_type) if t != NodeType.HANDLE]
    if len(moving) > 1:  # one type alone repeats the overall figures
        for t in moving:
            nodes = node_type == t
            curves = {"model": rmse_per_step(traj.pred_world_pos[:, nodes], traj.world_pos[:, nodes], history)}
            for name, pred in trivial.items():
                curves[name] = rmse_per_step(pred[:, nodes], traj.world_pos[:, nodes], history)
            metrics.type_rmse[NodeType(int(t)).name] = curves
    return metrics


def mean_summary(summaries: list[dict]) -> dict[str, float | None]:
    """Mean over trajectories of each metric (None where any trajectory lacks it)."""
    keys = [k for k in summaries[0] if k != "steps"] if summaries else []
    out: dict[str, float | None] = {}
    for key in keys:
        values = [s.get(key) for s in summaries]
        out[key] = None if any(v is None for v in values) else float(np.mean(values))
    return out


def evaluate_file(path: str | Path, json_path: str | Path | None = None,
                  plot_path: str | Path | None = None) -> dict:
    """Evaluate every trajectory of a rollout file; optionally write JSON and a PNG of RMSE over time."""
    from meshsim.datasets import TrajectoryFile

    with TrajectoryFile(path) as f:
        if not f.is_rollout:
            raise DataFormatError(f"{path} is a trajectory file, not a rollout file: run `meshsim rollout` first")
        per_traj = [evaluate_trajectory(f.read(i), i) for i in f.ids]
    if not per_traj:
        raise DataFormatError(f"{path} holds no trajectories")
    summaries = [m.summary() for m in per_traj]
    report = {
        "rollout": str(path),
        "scale": SCALE,
        "definition": "RMSE_k = sqrt(mean_nodes ||pred-true||^2); p1=RMSE_1, p50=mean_k<=50, p_all=mean_k; "
                      "positions x1e3 (m -> mm), stress in MPa; *_hold / *_cv: holding still / constant velocity "
                      "on the same frames; skill = 1 - p_all / p_all_hold; <TYPE>_*: nodes of one type",
        "trajectories": {m.traj_id: s for m, s in zip(per_traj, summaries)},
        "mean": mean_summary(summaries),
        "curves": {m.traj_id: _curves(m) for m in per_traj},
    }
    if json_path is not None:
        _write_atomic(Path(json_path), json.dumps(report, indent=1).encode())
    if plot_path is not None:
        plot_curves(per_traj, Path(plot_path))
    return report


TABLE_COLUMNS = [  # (key, header) of `meshsim eval`'s table; absent keys are left out
    ("p1", "p1"), ("p_all", "p_all"), ("p_all_hold", "hold"), ("p_all_cv", "const-v"), ("skill", "skill"),
    ("NORMAL_p_all", "NORMAL"), ("NORMAL_p_all_hold", "N-hold"), ("NORMAL_skill", "N-skill"),
    ("OBSTACLE_p_all", "OBSTACLE"), ("OBSTACLE_p_all_hold", "O-hold"),
    ("s_all", "s_all MPa"), ("s_all_hold", "s-hold"), ("s_skill", "s-skill"),
    ("j_all", "J-err %"), ("j_all_hold", "J-hold"),
]


def format_table(report: dict) -> str:
    """A fixed-width table: one row per trajectory and the mean, the learned figures beside holding still."""
    rows = dict(report["trajectories"])
    first = next(iter(rows.values()))
    columns = [(k, h) for k, h in TABLE_COLUMNS if k in first]
    header = f"{'trajectory':<12} {'steps':>5} " + " ".join(f"{h:>9}" for _, h in columns)
    lines = [header, "-" * len(header)]

    def cell(v):
        return f"{'-':>9}" if v is None else f"{v:>9.3f}" if math.isfinite(v) else f"{'nan':>9}"

    for tid, s in rows.items():
        lines.append(f"{tid:<12} {s['steps']:>5} " + " ".join(cell(s.get(k)) for k, _ in columns))
    lines.append(f"{'mean':<12} {'':>5} " + " ".join(cell(report["mean"].get(k)) for k, _ in columns))
    steps = sorted({s["steps"] for s in rows.values()})
    lines.append(f"position RMSE x1e-3 m (mm) as in HCMT over {'/'.join(map(str, steps))} rollout steps: p1 = step 1, "
                 "p_all = mean over all steps (p50 in --json); hold / const-v = holding every node still / moving it "
                 "at its last velocity, on the same frames; skill = 1 - p_all / hold (> 0 beats holding still); "
                 "NORMAL / OBSTACLE = those nodes only; s = von Mises stress RMSE in MPa (s-hold: last input stress); "
                 "J-err = RMS error of the deformable elements' volume ratio J = det F in % (the strain the "
                 "predicted mesh implies; J-hold: holding still)")
    return "\n".join(lines)


def _curves(m: TrajectoryMetrics) -> dict[str, list[float]]:
    """Per-step RMSE curves of one trajectory for the JSON report (positions x1e3, stress MPa)."""
    out = {"position": (m.position_rmse * SCALE).tolist()}
    out.update({f"position_{k}": (v * SCALE).tolist() for k, v in m.baseline_rmse.items() if k in ("hold", "cv")})
    for name, rmse in m.field_rmse.items():
        out[name] = (rmse * field_scale(name)).tolist()
        if f"{name}_hold" in m.baseline_rmse:
            out[f"{name}_hold"] = (m.baseline_rmse[f"{name}_hold"] * field_scale(name)).tolist()
    for type_name, curves in m.type_rmse.items():
        for name, rmse in curves.items():
            out[f"{type_name}" + ("" if name == "model" else f"_{name}")] = (rmse * SCALE).tolist()
    if m.volume_rmse is not None:
        out["volume"] = (m.volume_rmse * VOLUME_SCALE).tolist()
        out["volume_hold"] = (m.baseline_rmse["volume_hold"] * VOLUME_SCALE).tolist()
    return out


def plot_curves(per_traj: list[TrajectoryMetrics], path: Path) -> None:
    """RMSE over rollout steps, the model's mean bold beside holding still (dashed): one panel for all nodes, one
    per node type, one per field, one for the element volume ratio; thin lines are single trajectories."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("all nodes", lambda m: m.position_rmse, lambda m: m.baseline_rmse.get("hold"), SCALE, "x1e-3 m")]
    for t in sorted({t for m in per_traj for t in m.type_rmse}):
        panels.append((f"{t} nodes", lambda m, t=t: m.type_rmse.get(t, {}).get("model"),
                       lambda m, t=t: m.type_rmse.get(t, {}).get("hold"), SCALE, "x1e-3 m"))
    for name in sorted({k for m in per_traj for k in m.field_rmse}):
        unit = "MPa" if name == "stress" else "x1e-3"
        panels.append((name, lambda m, n=name: m.field_rmse.get(n),
                       lambda m, n=name: m.baseline_rmse.get(f"{n}_hold"), field_scale(name), unit))
    if any(m.volume_rmse is not None for m in per_traj):
        panels.append(("element volume J = det F", lambda m: m.volume_rmse,
                       lambda m: m.baseline_rmse.get("volume_hold"), VOLUME_SCALE, "%"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (title, model, hold, scale, unit) in zip(axes[0], panels):
        for label, get, style in (("model", model, "k-"), ("hold still", hold, "r--")):
            curves = [get(m) * scale for m in per_traj if get(m) is not None and len(get(m))]
            if label == "model":
                for c in curves:
                    ax.plot(np.arange(1, len(c) + 1), c, lw=0.8, alpha=0.4)
            if curves:
                h = min(len(c) for c in curves)
                ax.plot(np.arange(1, h + 1), np.mean([c[:h] for c in curves], axis=0), style, lw=2,
                        label=f"{label} (mean)")
        ax.legend(fontsize=8)
        ax.set_xlabel("rollout step")
        ax.set_ylabel(f"RMSE {unit}")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_path(path) as buf:
            fig.savefig(buf, dpi=110)
    except OSError as err:
        raise OutputError(f"cannot write plot {path} ({err.strerror}): choose a writable folder") from None
    finally:
        plt.close(fig)


def _write_atomic(path: Path, data: bytes) -> None:
    if not path.parent.is_dir():
        raise OutputError(f"folder {path.parent} does not exist: create it or choose another output path")
    write_atomic(path, data)
