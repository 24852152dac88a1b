"""Import DeepMind MeshGraphNets TFRecord datasets (and HCMT's Impact Plate) into the HDF5 store, no TensorFlow.

A dataset folder holds `meta.json` and `<split>.tfrecord`. Each record is one trajectory: a tf.train.Example whose
features are raw little-endian bytes, decoded with the `dtype` and reshaped to the `shape` that meta.json gives
per field (-1 = number of nodes or cells). Field types:

- `static`  [1, N, C]: the mesh (`cells`, `mesh_pos`, `node_type`) and constant node data (HCMT: `density`,
  `modulus`, `lap_pe`), which becomes a per-frame field tiled over time, as the published pipelines do;
- `dynamic` [T, N, C]: `world_pos` and the fields (`stress`, `velocity`, `pressure`, ...); width-1 fields are
  stored as [T, N];
- `static_varlen` (HCMT's precomputed hierarchy `m_ids`, `m_gs_s`, `m_gs_r`) and `dynamic_varlen` (remeshed
  frames) are ragged and skipped with a note: meshsim rebuilds the hierarchy itself (`meshsim.mesh.hierarchy`).

Datasets without `world_pos` (Eulerian flows) get `world_pos` = `mesh_pos` for every frame. dt comes from
meta.json, or from `dt=` when meta.json has none (deforming_plate stores dt = 0): we never guess one.

An import is resumable and marked: the store's root attr `import_status` reads "incomplete" until the last record
is committed ("complete"), and a resumed import must come from the same source (folder, split, dt, the first
record's bytes), or it is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from meshsim.datasets.schema import NodeType
from meshsim.datasets.trajectory import Trajectory
from meshsim.datasets.writer import TrajectoryWriter
from meshsim.errors import DataFormatError, OutputError

MESH_FIELDS = ("cells", "mesh_pos", "node_type")
KNOWN_TYPES = ("static", "dynamic", "static_varlen", "dynamic_varlen")
BATCH_BYTES = 64 << 20  # array bytes per atomic commit: fewer fsyncs, and at most this much redone after a crash


def read_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """meta.json of a DeepMind-layout dataset, checked for what the importer needs."""
    path = Path(folder) / "meta.json"
    if not path.is_file():
        raise DataFormatError(f"{path} not found; pass a DeepMind/HCMT dataset folder (meta.json + <split>.tfrecord)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path} is not valid JSON ({err}); fix or re-download it") from None
    features = meta.get("features") if isinstance(meta, dict) else None
    if not isinstance(features, dict) or not features:
        raise DataFormatError(f"{path} has no 'features' mapping; it is not a MeshGraphNets meta.json")
    for name, spec in features.items():
        ok = isinstance(spec, dict) and spec.get("type") in KNOWN_TYPES and isinstance(spec.get("shape"), list)
        if not ok or not isinstance(spec.get("dtype"), str):
            raise DataFormatError(f"{path}: feature {name!r} needs 'type' ({', '.join(KNOWN_TYPES)}), 'shape', 'dtype'")
        try:
            np.dtype(spec["dtype"])
        except TypeError:
            raise DataFormatError(f"{path}: feature {name!r} has unknown dtype {spec['dtype']!r}") from None
    missing = [f for f in MESH_FIELDS if features.get(f, {}).get("type") != "static"]
    if missing:
        raise DataFormatError(f"{path}: static feature(s) {', '.join(missing)} missing; the importer needs a mesh")
    if features.get("world_pos", {}).get("type", "dynamic") != "dynamic":
        raise DataFormatError(
            f"{path}: world_pos is {features['world_pos']['type']!r}; remeshed datasets (nodes changing over time) "
            "do not fit the fixed-mesh store"
        )
    return meta


def import_tfrecord_dataset(
    folder: str | os.PathLike,
    output: str | os.PathLike,
    split: str = "train",
    dt: float | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Convert `folder/<split>.tfrecord` into the store `output` (resumed if it exists); return a report."""
    folder = Path(folder)
    meta = read_meta(folder)
    source = folder / f"{split}.tfrecord"
    if not source.is_file():
        found = ", ".join(sorted(p.name for p in folder.glob("*.tfrecord"))) or "none"
        raise DataFormatError(f"{source} not found (tfrecord files here: {found}); pick another --split")
    step = _resolve_dt(meta, dt, folder)
    if limit is not None and limit < 1:
        raise DataFormatError(f"limit must be a positive number of trajectories, got {limit}")
    notes = _notes(meta)
    identity = _source_identity(folder, source, split, step)
    if Path(output).exists():
        _check_same_source(Path(output), identity)
    root_attrs = {**identity, "import_status": "incomplete"}  # "complete" once every record is in
    for key in ("simulator", "collision_radius", "trajectory_length"):
        if isinstance(meta.get(key), (str, int, float)) and not isinstance(meta.get(key), bool):
            root_attrs[f"source_{key}"] = meta[key]
    imported = skipped = 0
    failure: DataFormatError | None = None
    with TrajectoryWriter(output, attrs=root_attrs) as writer:
        done = set(writer.ids)
        records = _records(source, limit)
        finished = False
        while not finished:
            finished = True
            budget = BATCH_BYTES
            with writer.batch():
                written = 0
                try:
                    for index, record in records:
                        traj_id = f"{index:05d}"
                        if traj_id in done:
                            skipped += 1
                            continue
                        traj = decode_trajectory(record, meta, step, f"{source}: record {index}")
                        traj.attrs["source_index"] = index
                        writer.write(traj_id, traj)
                        imported += 1
                        written += traj.world_pos.nbytes + sum(f.nbytes for f in traj.fields.values())
                        if written >= budget:
                            finished = False
                            break
                    if finished:  # committed with the last trajectories, or not at all
                        writer.set_attrs({"import_status": "complete"})
                except DataFormatError as err:  # a damaged record: keep the good ones before it, then report
                    failure = err
    if failure is not None:
        raise failure
    return {"source": str(source), "output": str(output), "imported": imported, "skipped": skipped,
            "dt": step, "notes": notes}  # fmt: skip


def decode_trajectory(record: bytes, meta: dict[str, Any], dt: float, where: str) -> Trajectory:
    """One serialized tf.train.Example -> Trajectory (validated later by the writer)."""
    from tfrecord import example_pb2

    example = example_pb2.Example()
    try:
        example.ParseFromString(bytes(record))
    except Exception as err:  # protobuf's DecodeError and friends
        raise DataFormatError(f"{where}: not a tf.train.Example ({err}); the file is damaged") from None
    features = example.features.feature
    length = meta.get("trajectory_length")
    static: dict[str, np.ndarray] = {}
    dynamic: dict[str, np.ndarray] = {}
    for name, spec in meta["features"].items():
        if spec["type"] not in ("static", "dynamic"):
            continue
        if name not in features:
            raise DataFormatError(f"{where}: feature {name!r} listed in meta.json is missing from the record")
        data = _decode(features[name], spec, name, where)
        (static if spec["type"] == "static" else dynamic)[name] = data
    cells = _static_rows(static.pop("cells"), "cells", where)
    mesh_pos = _static_rows(static.pop("mesh_pos"), "mesh_pos", where)
    node_type = _static_rows(static.pop("node_type"), "node_type", where).reshape(len(mesh_pos), -1)[:, 0]
    num_nodes = len(mesh_pos)
    if "world_pos" in dynamic:
        world_pos = dynamic.pop("world_pos")
    else:
        frames = next(iter(dynamic.values())).shape[0] if dynamic else int(length or 1)
        world_pos = np.broadcast_to(mesh_pos, (frames, *mesh_pos.shape))
    num_frames = world_pos.shape[0]
    fields = {}
    for name, data in dynamic.items():
        if data.shape[:2] != (num_frames, num_nodes):
            raise DataFormatError(
                f"{where}: dynamic feature {name!r} has shape {list(data.shape)}, "
                f"expected [{num_frames}, {num_nodes}, C]"
            )
        fields[name] = _squeeze(data)
    for name, data in static.items():  # constant node data (density, modulus, ...): tiled over time
        rows = _static_rows(data, name, where)
        if rows.shape[0] == num_nodes:
            fields[name] = _squeeze(np.broadcast_to(rows, (num_frames, *rows.shape)).astype(np.float32))
    return Trajectory(
        cells=cells, mesh_pos=mesh_pos, node_type=node_type, world_pos=np.ascontiguousarray(world_pos), dt=dt,
        fields={k: np.ascontiguousarray(v, dtype=np.float32) for k, v in fields.items()},
        attrs=_material_attrs(static, node_type, num_nodes),
    )  # fmt: skip


# HCMT's per-node material data -> the trajectory attrs that meshsim's own scenarios store (and models read)
MATERIAL_ATTRS = {"density": "density", "modulus": "youngs_modulus"}


def _material_attrs(static: dict[str, np.ndarray], node_type: np.ndarray, num_nodes: int) -> dict[str, float]:
    """Material values that are uniform over the deformable (NORMAL) nodes, as per-trajectory attrs."""
    attrs = {}
    deformable = node_type == NodeType.NORMAL
    for name, attr in MATERIAL_ATTRS.items():
        values = np.asarray(static.get(name, np.empty(0)), np.float64).reshape(-1)
        if values.size != num_nodes:
            continue
        values = values[deformable] if deformable.any() else values
        if np.all(np.isfinite(values)) and np.allclose(values, values[0], rtol=1e-6, atol=0):
            attrs[attr] = float(values[0])
    return attrs


def _resolve_dt(meta: dict[str, Any], dt: float | None, folder: Path) -> float:
    meta_dt = meta.get("dt", 0)
    if isinstance(meta_dt, bool) or not isinstance(meta_dt, (int, float)) or not np.isfinite(meta_dt) or meta_dt < 0:
        raise DataFormatError(f"{folder}/meta.json: 'dt' = {meta_dt!r} is not a time step; fix meta.json or pass --dt")
    if dt is not None and (not np.isfinite(dt) or dt <= 0):
        raise DataFormatError(f"--dt must be a positive number of seconds, got {dt}")
    if meta_dt > 0:
        if dt is not None and not np.isclose(dt, meta_dt, rtol=1e-9, atol=0):
            raise DataFormatError(f"--dt {dt} contradicts meta.json dt = {meta_dt}; drop --dt to use the dataset's")
        return float(meta_dt)
    if dt is None:
        raise DataFormatError(
            f"{folder}/meta.json has no time step (dt = {meta_dt}); pass --dt SECONDS (the time between frames)"
        )
    return float(dt)


def _notes(meta: dict[str, Any]) -> list[str]:
    notes = []
    ragged = [n for n, s in meta["features"].items() if s["type"] in ("static_varlen", "dynamic_varlen")]
    if ragged:
        notes.append(f"ragged feature(s) {', '.join(ragged)} skipped (precomputed hierarchies / remeshing)")
    if "world_pos" not in meta["features"]:
        notes.append("no world_pos in the dataset (Eulerian mesh): world_pos = mesh_pos in every frame")
    tiled = [n for n, s in meta["features"].items() if s["type"] == "static" and n not in MESH_FIELDS]
    if tiled:
        notes.append(f"static node data {', '.join(tiled)} stored as fields tiled over time")
    return notes


def _decode(feature, spec: dict[str, Any], name: str, where: str) -> np.ndarray:
    kind = feature.WhichOneof("kind")
    if kind == "bytes_list":
        raw = b"".join(feature.bytes_list.value)
        dtype = np.dtype(spec["dtype"]).newbyteorder("<")
        if len(raw) % dtype.itemsize:
            raise DataFormatError(f"{where}: feature {name!r} holds {len(raw)} bytes, not a whole number of {dtype}")
        data = np.frombuffer(raw, dtype=dtype)
    elif kind in ("float_list", "int64_list"):
        data = np.asarray(getattr(feature, kind).value)
    else:
        raise DataFormatError(f"{where}: feature {name!r} is empty")
    try:
        return data.reshape(spec["shape"]).astype(data.dtype.newbyteorder("="))
    except ValueError:
        raise DataFormatError(
            f"{where}: feature {name!r} has {data.size} values, which do not fit the meta.json shape {spec['shape']}"
        ) from None


def _static_rows(data: np.ndarray, name: str, where: str) -> np.ndarray:
    """A static feature [1, R, C] (or [R, C]) as its rows [R, C]."""
    if data.ndim == 3 and data.shape[0] == 1:
        return data[0]
    if data.ndim == 2:
        return data
    raise DataFormatError(f"{where}: static feature {name!r} has shape {list(data.shape)}, expected [1, -1, C]")


def _squeeze(data: np.ndarray) -> np.ndarray:
    return data[..., 0] if data.ndim == 3 and data.shape[2] == 1 else data


def _source_identity(folder: Path, source: Path, split: str, dt: float) -> dict[str, Any]:
    """What a resumed import must match: the dataset folder, split, dt and the first record's bytes (not the file's
    size: a download that was truncated, then fetched again, resumes the same import)."""
    first = b"".join(payload for _, payload in _records(source, 1))
    return {"source": "deepmind-meshgraphnets-tfrecord", "source_dir": str(folder.resolve()), "source_split": split,
            "source_dt": float(dt), "source_first_record_sha256": hashlib.sha256(first).hexdigest()}


def _check_same_source(output: Path, identity: dict[str, Any]) -> None:
    """Resuming extends `output` only with records of the very source it was started from."""
    from meshsim.datasets.reader import TrajectoryFile

    with TrajectoryFile(output) as f:
        stored = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    if stored.get("source") != identity["source"]:
        raise OutputError(f"{output} exists and was not made by `meshsim data import`; choose another -o path")
    for key, value in identity.items():
        if key in stored and stored[key] != value:
            raise OutputError(
                f"{output} was imported with {key}={stored[key]}, this import has {key}={value}: resuming would "
                "mix two sources; choose another -o path or delete the file")


def _records(path: Path, limit: int | None) -> Iterator[tuple[int, bytes]]:
    """(index, payload) of each record of a TFRecord file, lengths and CRCs checked.

    Framing: uint64 length, masked CRC32C of the length, payload, masked CRC32C of the payload (little endian).
    Checking lengths against the file size keeps damaged or foreign files from asking for absurd allocations.
    """
    from tfrecord.writer import TFRecordWriter

    crc = TFRecordWriter.masked_crc
    size = path.stat().st_size
    with open(path, "rb") as fh:
        index = 0
        while limit is None or index < limit:
            header = fh.read(12)
            if not header:
                return
            where = f"{path}: record {index}"
            if len(header) < 12:
                raise DataFormatError(f"{where} cannot be read (file ends inside its header); the file is truncated")
            (length,) = struct.unpack("<Q", header[:8])
            if crc(header[:8]) != header[8:]:
                raise DataFormatError(f"{where} cannot be read (length checksum mismatch); not a TFRecord or damaged")
            if length > size - fh.tell() - 4:
                raise DataFormatError(f"{where} cannot be read (file ends inside the record); the file is truncated")
            payload = fh.read(length)
            if crc(payload) != fh.read(4):
                raise DataFormatError(f"{where} cannot be read (data checksum mismatch); the file is damaged")
            yield index, payload
            index += 1
