"""How predictable is a plate's next frame from its last two? Linear oracles beside learned models.

    python benchmarks/plate_oracle.py --train train.h5 --test test.h5 [--hops 1,2,4,global] [--checkpoint C ...]
    python benchmarks/plate_oracle.py --quick          # tiny impact-plate stores generated here

The target is the frame acceleration of the deformable (NORMAL) nodes, a_t = x_{t+1} - 2 x_t + x_{t-1}, at every
frame t of every test trajectory. A linear oracle predicts it, node by node, by ridge regression on the
displacement u = x_t - X and the velocity v = x_t - x_{t-1} of the NORMAL nodes within r mesh hops, together with
those times (c / c_mean)^2 and ^4 (c = sqrt(E / rho): the material sets the frequencies), fitted on every frame of
the training trajectories; `global` uses the whole plate. A learned model is scored the same way, one step from
ground-truth history (teacher forced, no rollout). The figure is the relative error
sqrt(sum |a_hat - a|^2 / sum |a|^2): 0 is exact, 1 is no better than predicting zero acceleration (constant
velocity). Every trajectory must share one plate mesh (the impact plate's does). The last line printed is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RIDGE = 1e-3  # relative to the number of samples, on standardised features


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", help="training trajectories (HDF5) the oracles are fitted on")
    ap.add_argument("--test", help="held-out trajectories (HDF5) they are scored on")
    ap.add_argument("--hops", default="1,2,4,global", help="neighbourhood radii in mesh hops, comma separated")
    ap.add_argument("--checkpoint", nargs="*", default=[], help="learned models (paths or shipped names) to score")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="generate tiny impact-plate stores here and use those")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.quick:
        train_path, test_path = quick_stores(Path(tempfile.mkdtemp(prefix="plate-oracle-")))
    elif not (args.train and args.test):
        ap.error("pass --train and --test (or --quick)")
    else:
        train_path, test_path = Path(args.train), Path(args.test)
    hops = [None if h.strip() == "global" else int(h) for h in args.hops.split(",")]
    load = [os.getloadavg()[0]]
    train, mesh = read_frames(train_path)
    test, test_mesh = read_frames(test_path)
    if not (np.array_equal(mesh["plate"], test_mesh["plate"]) and np.allclose(mesh["rest"], test_mesh["rest"])):
        sys.exit("plate_oracle.py: the train and test stores have different plate meshes; the oracles need one")
    oracles = {("global" if r is None else f"{r}_hops"): oracle_error(train, test, mesh, r) for r in hops}
    models = {str(c): model_error(c, test_path) for c in args.checkpoint}
    load.append(os.getloadavg()[0])
    out = {"benchmark": "plate_oracle", "quick": args.quick, "train": str(train_path), "test": str(test_path),
           "plate_nodes": int(len(mesh["plate"])), "max_hops": int(mesh["hops"].max()),
           "oracle_rel_error": oracles, "model_rel_error": models, "load_average_1min": load,
           "note": "relative one-step error of the NORMAL nodes' frame acceleration on the test frames: 1 = no "
                   "better than constant velocity; oracle_rel_error[...]['train'] is the fit on its own data"}
    print(json.dumps(out))
    return out


def read_frames(path: Path) -> tuple[list[dict], dict]:
    """Per trajectory: u, v, a of the NORMAL nodes at frames 1..T-2 and the material speed c; and the mesh."""
    import h5py

    from meshsim.datasets.schema import NodeType
    from meshsim.mesh import edges_from_cells

    frames, mesh = [], None
    with h5py.File(path, "r") as f:
        for name in sorted(f["trajectories"]):
            t = f["trajectories"][name]
            x = t["world_pos"][:].astype(np.float64)
            node_type, cells, rest = t["node_type"][:], t["cells"][:], t["mesh_pos"][:].astype(np.float64)
            plate = np.flatnonzero(node_type == int(NodeType.NORMAL))
            if mesh is None:
                mesh = {"rest": rest[plate], "plate": plate, "hops": plate_hops(edges_from_cells(cells), plate)}
            elif not (np.array_equal(plate, mesh["plate"]) and np.allclose(rest[plate], mesh["rest"])):
                sys.exit(f"plate_oracle.py: {path} trajectory {name} has another plate mesh; the oracles need one")
            speed = float(np.sqrt(t.attrs["youngs_modulus"] / t.attrs["density"]))
            frames.append({"u": x[1:-1, plate] - rest[plate], "v": (x[1:-1] - x[:-2])[:, plate],
                           "a": (x[2:] - 2 * x[1:-1] + x[:-2])[:, plate], "c": speed})
    return frames, mesh


def plate_hops(edges: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """[P, P] mesh-hop distances between the plate nodes (through plate edges only)."""
    import scipy.sparse as sp
    from scipy.sparse import csgraph

    local = -np.ones(int(edges.max()) + 1, dtype=np.int64)
    local[plate] = np.arange(len(plate))
    e = local[np.asarray(edges)]
    e = e[:, (e >= 0).all(axis=0)]
    graph = sp.coo_matrix((np.ones(e.shape[1]), (e[0], e[1])), shape=(len(plate),) * 2)
    return csgraph.shortest_path(graph.tocsr(), unweighted=True, directed=False)


def features(frame: dict, nodes: np.ndarray, mean_speed: float) -> np.ndarray:
    s = frame["c"] / mean_speed
    u = frame["u"][:, nodes].reshape(len(frame["u"]), -1)
    v = frame["v"][:, nodes].reshape(len(frame["v"]), -1)
    return np.concatenate([u, v, u * s**2, v * s, u * s**4, v * s**2], axis=1)


def oracle_error(train: list[dict], test: list[dict], mesh: dict, hops: int | None) -> dict:
    """Relative error of per-node ridge regressions on the (u, v) of the nodes within `hops` (None: all)."""
    mean_speed = float(np.mean([f["c"] for f in train]))
    sums = {"train": [0.0, 0.0], "test": [0.0, 0.0]}
    for i in range(len(mesh["plate"])):
        nodes = np.arange(len(mesh["plate"])) if hops is None else np.flatnonzero(mesh["hops"][i] <= hops)
        X = np.concatenate([features(f, nodes, mean_speed) for f in train])
        Y = np.concatenate([f["a"][:, i] for f in train])
        scale = X.std(axis=0) + 1e-30
        X = X / scale
        W = np.linalg.solve(X.T @ X + RIDGE * len(X) * np.eye(X.shape[1]), X.T @ Y)
        sums["train"][0] += float(((X @ W - Y) ** 2).sum())
        sums["train"][1] += float((Y**2).sum())
        for f in test:
            pred = features(f, nodes, mean_speed) / scale @ W
            sums["test"][0] += float(((pred - f["a"][:, i]) ** 2).sum())
            sums["test"][1] += float((f["a"][:, i] ** 2).sum())
    return {k: round(float(np.sqrt(e / m)), 4) for k, (e, m) in sums.items()}


def model_error(checkpoint: str, test_path: Path) -> float:
    """A learned model's one-step (teacher-forced) relative error on the same target."""
    import h5py
    import torch

    from meshsim.datasets.schema import NodeType
    from meshsim.models import load_simulator
    from meshsim.train.pretrained import resolve_checkpoint

    sim = load_simulator(resolve_checkpoint(checkpoint))
    sim.eval()
    err = mag = 0.0
    with h5py.File(test_path, "r") as f:
        for name in sorted(f["trajectories"]):
            t = f["trajectories"][name]
            x = torch.as_tensor(t["world_pos"][:], dtype=torch.float32)
            node_type = t["node_type"][:]
            static = sim.prepare(t["mesh_pos"][:], t["cells"][:], node_type, dict(t.attrs))
            plate = torch.as_tensor(node_type == int(NodeType.NORMAL))
            for k in range(1, len(x) - 1):
                nxt, _ = sim.step(static, x[k - 1], x[k], x[k + 1])  # the hint: kinematic nodes' true motion
                err += float(((nxt.cpu() - x[k + 1])[plate] ** 2).sum())
                mag += float(((x[k + 1] - 2 * x[k] + x[k - 1])[plate] ** 2).sum())
    return round((err / mag) ** 0.5, 4)


def quick_stores(tmp: Path) -> tuple[Path, Path]:
    from meshsim.scenarios import generate

    train, test = tmp / "train.h5", tmp / "test.h5"
    generate("impact-plate-2d", num=4, out=train, seed=0, overrides=["num_frames=8"], progress=False)
    generate("impact-plate-2d", num=1, out=test, seed=2, overrides=["num_frames=8"], progress=False)
    return train, test


if __name__ == "__main__":
    main()
