"""The corpus of bad inputs, generated into a folder (small files, written fresh by each test session).

Every builder takes good inputs (a trajectory store, a rollout file, a checkpoint) and writes one damaged or
hostile variant; the tests feed each variant to every command that reads that kind of input.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import h5py
import meshio
import numpy as np
import torch

# ---------------------------------------------------------------- meshes (mesh info, nclaw body shapes)
SQUARE = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float)
TET = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], float)


def _meshio(path, points, blocks):
    meshio.write(path, meshio.Mesh(points, blocks))


ONE_TRIANGLE = [("triangle", [[0, 1, 2]])]

UNUSABLE_MESHES = {
    # name -> writer(path); files that no command can use: the reader must refuse them
    "empty_file.msh": lambda p: p.write_bytes(b""),
    "binary_garbage.stl": lambda p: p.write_bytes(os.urandom(300)),
    "no_cells.vtu": lambda p: _meshio(p, SQUARE, []),
    "no_points.obj": lambda p: p.write_text("# nothing\n"),
    "nan_point.vtu": lambda p: _meshio(p, np.array([[0, 0, 0], [1, 0, 0], [0, np.nan, 0]]), ONE_TRIANGLE),
    "inf_point.vtu": lambda p: _meshio(p, np.array([[0, 0, 0], [np.inf, 0, 0], [0, 1, 0]]), ONE_TRIANGLE),
    "index_out_of_range.vtu": lambda p: _meshio(p, SQUARE, [("triangle", [[0, 1, 9]])]),
    "negative_index.obj": lambda p: p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 7\n"),
    "only_lines.vtu": lambda p: _meshio(p, SQUARE, [("line", [[0, 1], [1, 2]])]),
    "truncated.msh": lambda p: p.write_text("$MeshFormat\n4.1 0 8\n$EndMeshFormat\n$Nodes\n1 3 1 3\n"),
}

# Readable meshes with defects: `mesh info` must name the defect (its purpose); solvers must refuse them.
DEFECTIVE_MESHES = {
    "inverted_triangle.vtu": (lambda p: _meshio(p, SQUARE, [("triangle", [[0, 2, 1], [1, 2, 3]])]), "inverted"),
    "degenerate_triangle.vtu": (
        lambda p: _meshio(p, np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0]]),
                          [("triangle", [[0, 1, 2], [0, 1, 3]])]), "degenerate"),
    "inverted_tetra.vtu": (lambda p: _meshio(p, TET, [("tetra", [[0, 2, 1, 3]])]), "inverted"),
    # gmsh-style files mix boundary triangles with volume tetrahedra: info lists both blocks, meshes the tetra
    "mixed_triangle_tetra.vtu": (
        lambda p: _meshio(p, TET, [("triangle", [[0, 1, 2]]), ("tetra", [[0, 1, 2, 3]])]), "unreferenced_nodes"),
    "non_manifold_fan.obj": (
        lambda p: p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 -1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 2 5\n"),
        "non_manifold_edges"),
}


def write_meshes(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, write in UNUSABLE_MESHES.items():
        write(folder / name)
        out[name] = folder / name
    for name, (write, _) in DEFECTIVE_MESHES.items():
        write(folder / name)
        out[name] = folder / name
    return out


# ---------------------------------------------------------------- HDF5 trajectory / rollout files
def _edit(src: Path, dst: Path, fn) -> None:
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        first = f["trajectories"][sorted(f["trajectories"])[0]]
        fn(f, first)


def _replace(group, name, data):
    del group[name]
    group.create_dataset(name, data=data)


def _bytes(src: Path, dst: Path, fn) -> None:
    dst.write_bytes(fn(src.read_bytes()))


def _foreign_hdf5(dst: Path) -> None:
    with h5py.File(dst, "w") as f:
        f.create_dataset("images", data=np.zeros((4, 8, 8), np.uint8))
        f.attrs["format"] = "someone.else"


def _set(node, key, value):
    node.attrs[key] = value


def _scale(group, name, fn):
    data = group[name][()]
    _replace(group, name, fn(data))


def _nan_at(data, index):
    data = data.astype(np.float32)
    data[index] = np.nan
    return data


BAD_HDF5 = {
    # name -> (builder(src, dst), words the error line must contain besides the file name)
    "empty.h5": (lambda s, d: d.write_bytes(b""), ()),
    "text.h5": (lambda s, d: d.write_text("frame,x,y\n0,1,2\n"), ()),
    "random_bytes.h5": (lambda s, d: d.write_bytes(np.random.default_rng(0).bytes(4096)), ()),
    "truncated_half.h5": (lambda s, d: _bytes(s, d, lambda b: b[: len(b) // 2]), ()),
    "truncated_tail.h5": (lambda s, d: _bytes(s, d, lambda b: b[:-512]), ()),
    "superblock_zeroed.h5": (lambda s, d: _bytes(s, d, lambda b: b[:8] + bytes(120) + b[128:]), ()),
    "foreign_hdf5.h5": (lambda s, d: _foreign_hdf5(d), ()),
    "format_version_99.h5": (lambda s, d: _edit(s, d, lambda f, t: _set(f, "format_version", 99)), ("version",)),
    "format_name_other.h5": (lambda s, d: _edit(s, d, lambda f, t: _set(f, "format", "meshsim.other")), ("format",)),
    "world_pos_wrong_nodes.h5": (
        lambda s, d: _edit(s, d, lambda f, t: _scale(t, "world_pos", lambda a: np.concatenate([a, a[:, :1]], 1))),
        ("world_pos",)),
    "cells_out_of_range.h5": (
        lambda s, d: _edit(s, d, lambda f, t: _scale(t, "cells", lambda a: np.where(a == a.max(), 10**6, a))),
        ("cells",)),
    "cells_negative.h5": (
        lambda s, d: _edit(s, d, lambda f, t: _scale(t, "cells", lambda a: np.where(a == 0, -1, a))), ("cells",)),
    "cells_five_nodes.h5": (
        lambda s, d: _edit(s, d, lambda f, t: _scale(t, "cells", lambda a: np.concatenate([a, a[:, :2]], 1))),
        ("cells",)),
    "mesh_pos_nan.h5": (
        lambda s, d: _edit(s, d, lambda f, t: _scale(t, "mesh_pos", lambda a: _nan_at(a, (0, 0)))), ("mesh_pos",)),
    "world_pos_nan_last_frame.h5": (
        lambda s, d: _edit(s, d, lambda f, t: _scale(t, "world_pos", lambda a: _nan_at(a, (-1, 1, 0)))),
        ("world_pos",)),
    "no_nodes.h5": (
        lambda s, d: _edit(s, d, lambda f, t: (_scale(t, "mesh_pos", lambda a: a[:0]), _scale(
            t, "world_pos", lambda a: a[:, :0]), _scale(t, "node_type", lambda a: a[:0]), _scale(
            t, "cells", lambda a: a[:0]))), ()),
    "negative_dt.h5": (lambda s, d: _edit(s, d, lambda f, t: _set(t, "dt", -0.01)), ("dt",)),
    "node_type_unknown.h5": (
        lambda s, d: _edit(s, d, lambda f, t: _scale(t, "node_type", lambda a: a + 40)), ("node_type",)),
    "world_pos_missing.h5": (lambda s, d: _edit(s, d, lambda f, t: t.__delitem__("world_pos")), ("world_pos",)),
}

# Damage only a rollout file can carry (its prediction).
BAD_ROLLOUT = {
    "pred_wrong_frames.h5": (
        lambda s, d: _edit(s, d, lambda f, t: _scale(t, "pred/world_pos", lambda a: a[:-1])), ("pred",)),
    "pred_nan.h5": (lambda s, d: _edit(s, d, lambda f, t: _scale(t, "pred/world_pos", lambda a: _nan_at(a, (1, 0, 0)))),
                    ("pred",)),
}


def write_hdf5(folder: Path, store: Path, rollout: Path) -> dict[str, tuple[Path, Path, tuple]]:
    """name -> (variant of the store, variant of the rollout file, words)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (build, words) in BAD_HDF5.items():
        a, b = folder / f"store_{name}", folder / f"rollout_{name}"
        build(store, a)
        build(rollout, b)
        out[name] = (a, b, words)
    for name, (build, words) in BAD_ROLLOUT.items():
        b = folder / f"rollout_{name}"
        build(rollout, b)
        out[name] = (None, b, words)
    return out


# ---------------------------------------------------------------- checkpoints
class CodePayload:
    """Unpickling this runs `touch MARKER`: what a hostile checkpoint does. Loading must never run it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_checkpoints(folder: Path, good_hcmt: Path, good_nclaw: Path, marker: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = torch.load(good_hcmt, weights_only=True)
    out = {}

    def save(name, obj, raw=False):
        path = folder / name
        if raw:
            path.write_bytes(obj)
        else:
            torch.save(obj, path)
        out[name] = path

    save("empty.pt", b"", raw=True)
    save("random_bytes.pt", np.random.default_rng(1).bytes(2048), raw=True)
    save("truncated.pt", good_hcmt.read_bytes()[:2000], raw=True)
    save("plain_pickle_payload.pt", pickle.dumps({"model": CodePayload(marker)}), raw=True)
    save("torch_pickle_payload.pt", {**good, "extra": CodePayload(marker)})
    save("version_99.pt", {**good, "version": 99})
    save("other_format.pt", {**good, "format": "someone.checkpoint"})
    save("nclaw_for_hcmt.pt", torch.load(good_nclaw, weights_only=True))
    save("hcmt_for_nclaw.pt", good)
    save("not_a_dict.pt", [1, 2, 3])
    save("weights_of_another_size.pt", {**good, "model": {k: torch.zeros(3) for k in good["model"]}})
    save("missing_model.pt", {k: v for k, v in good.items() if k != "model"})
    nclaw = torch.load(good_nclaw, weights_only=True)
    save("nclaw_pickle_payload.pt", {**nclaw, "extra": CodePayload(marker)})
    save("nclaw_wrong_weights.pt", {**nclaw, "model": {"nothing": torch.zeros(1)}})
    return out
