"""Rollout error metrics, defined as in HCMT's evaluation code, and the `meshsim eval` report.

For a rollout that starts from `history` ground-truth frames, step k (k = 1..h) is frame `history - 1 + k`.

    RMSE_k = sqrt( mean over ALL nodes of ||x_hat_k - x_k||^2 )        (squared norm over components)
    p1     = RMSE_1,   p50 = mean(RMSE_1..RMSE_50),   p_all = mean(RMSE_1..RMSE_h)

reported x1e3 (HCMT's tables print position RMSE "x1e-3"). Stress (or any scalar field) is treated alike:
s1, s50, s_all, also x1e3, in the file's unit. As in HCMT's code (a slice of the first 50 steps), p50 is the mean
over the steps there are when the rollout has fewer than 50 (then p50 = p_all; "steps" says how many).

    from meshsim.metrics import evaluate_file
    report = evaluate_file("rollout.h5", json_path="eval.json", plot_path="eval.png")
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from meshsim.errors import DataFormatError, OutputError

SCALE = 1e3  # HCMT reports RMSE x1e-3, i.e. the number printed is RMSE * 1e3
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


def summarize(rmse: np.ndarray, prefix: str) -> dict[str, float | None]:
    """{prefix1, prefix50, prefix_all} from RMSE_k (k = 1..h), scaled x1e3."""
    h = len(rmse)
    if h == 0:
        return {f"{prefix}1": None, f"{prefix}50": None, f"{prefix}_all": None}
    return {
        f"{prefix}1": float(rmse[0] * SCALE),
        f"{prefix}50": float(rmse[:50].mean() * SCALE),
        f"{prefix}_all": float(rmse.mean() * SCALE),
    }


@dataclass
class TrajectoryMetrics:
    traj_id: str
    steps: int
    position_rmse: np.ndarray  # [h], unscaled
    field_rmse: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {"steps": self.steps}
        out.update(summarize(self.position_rmse, "p"))
        for name, rmse in self.field_rmse.items():
            out.update(summarize(rmse, "s" if name == "stress" else f"{name}_"))
        return out


def evaluate_trajectory(traj, traj_id: str = "") -> TrajectoryMetrics:
    """Metrics of one rollout trajectory (`meshsim.datasets.Trajectory` with `pred_world_pos`)."""
    if traj.pred_world_pos is None:
        raise DataFormatError(f"trajectory {traj_id}: no pred/world_pos; pass a rollout file (meshsim rollout)")
    history = int(traj.attrs.get(HISTORY_ATTR, 2))
    metrics = TrajectoryMetrics(traj_id, traj.world_pos.shape[0] - history,
                                rmse_per_step(traj.pred_world_pos, traj.world_pos, history))
    for name, pred in sorted(traj.pred_fields.items()):
        if name in traj.fields:
            metrics.field_rmse[name] = rmse_per_step(pred, traj.fields[name], history)
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
        "definition": "RMSE_k = sqrt(mean_nodes ||pred-true||^2); p1=RMSE_1, p50=mean_k<=50, p_all=mean_k; x1e3",
        "trajectories": {m.traj_id: s for m, s in zip(per_traj, summaries)},
        "mean": mean_summary(summaries),
        "curves": {m.traj_id: {"position": (m.position_rmse * SCALE).tolist(),
                               **{k: (v * SCALE).tolist() for k, v in m.field_rmse.items()}}
                   for m in per_traj},
    }
    if json_path is not None:
        _write_atomic(Path(json_path), json.dumps(report, indent=1).encode())
    if plot_path is not None:
        plot_curves(per_traj, Path(plot_path))
    return report


def format_table(report: dict) -> str:
    """A fixed-width table: one row per trajectory and the mean."""
    rows = dict(report["trajectories"])
    keys = [k for k in next(iter(rows.values())) if k != "steps"]
    header = f"{'trajectory':<12} {'steps':>5} " + " ".join(f"{k:>10}" for k in keys)
    lines = [header, "-" * len(header)]

    def cell(v):
        return f"{'-':>10}" if v is None else f"{v:>10.3f}" if math.isfinite(v) else f"{'nan':>10}"

    for tid, s in rows.items():
        lines.append(f"{tid:<12} {s['steps']:>5} " + " ".join(cell(s[k]) for k in keys))
    lines.append(f"{'mean':<12} {'':>5} " + " ".join(cell(report["mean"][k]) for k in keys))
    lines.append("(RMSE x1e-3 as in HCMT: p = position, s = stress; 1 / 50 / all rollout steps)")
    return "\n".join(lines)


def plot_curves(per_traj: list[TrajectoryMetrics], path: Path) -> None:
    """RMSE over rollout steps: one thin line per trajectory, the mean bold; one panel per quantity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quantities = ["position"] + sorted({k for m in per_traj for k in m.field_rmse})
    fig, axes = plt.subplots(1, len(quantities), figsize=(5 * len(quantities), 3.6), squeeze=False)
    for ax, name in zip(axes[0], quantities):
        curves = [m.position_rmse if name == "position" else m.field_rmse.get(name) for m in per_traj]
        curves = [c * SCALE for c in curves if c is not None and len(c)]
        for c in curves:
            ax.plot(np.arange(1, len(c) + 1), c, lw=0.8, alpha=0.4)
        if curves:
            h = min(len(c) for c in curves)
            ax.plot(np.arange(1, h + 1), np.mean([c[:h] for c in curves], axis=0), "k", lw=2, label="mean")
            ax.legend()
        ax.set_xlabel("rollout step")
        ax.set_ylabel(f"{name} RMSE x1e-3")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(buf, dpi=110)
    except OSError as err:
        raise OutputError(f"cannot write plot {path} ({err.strerror}): choose a writable folder") from None
    finally:
        plt.close(fig)
    os.replace(buf, path)


def _write_atomic(path: Path, data: bytes) -> None:
    if not path.parent.is_dir():
        raise OutputError(f"folder {path.parent} does not exist: create it or choose another output path")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
