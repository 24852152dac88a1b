"""Importers: DeepMind MeshGraphNets and HCMT Impact Plate TFRecord datasets written here, compared after import."""

import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from procs import meshsim_cmd, run
from tfrecord.writer import TFRecordWriter

from meshsim import cli
from meshsim.datasets import TrajectoryFile
from meshsim.datasets.importers import import_tfrecord_dataset
from meshsim.errors import DataFormatError, OutputError


def _write_dataset(folder, meta, records, split="train"):
    folder.mkdir(exist_ok=True)
    (folder / "meta.json").write_text(json.dumps(meta))
    writer = TFRecordWriter(str(folder / f"{split}.tfrecord"))
    for record in records:
        writer.write({name: (value.tobytes(), "byte") for name, value in record.items()})
    writer.close()


def deforming_plate(folder, num=3, frames=5, split="train"):
    """DeepMind's deforming_plate layout: 3D tetrahedra, dt = 0 in meta.json, stress [T, N, 1]."""
    rng = np.random.default_rng(1)
    features = {
        "cells": {"type": "static", "shape": [1, -1, 4], "dtype": "int32"},
        "node_type": {"type": "static", "shape": [1, -1, 1], "dtype": "int32"},
        "mesh_pos": {"type": "static", "shape": [1, -1, 3], "dtype": "float32"},
        "world_pos": {"type": "dynamic", "shape": [frames, -1, 3], "dtype": "float32"},
        "stress": {"type": "dynamic", "shape": [frames, -1, 1], "dtype": "float32"},
    }
    meta = {"simulator": "comsol", "dt": 0, "collision_radius": 0.03, "trajectory_length": frames,
            "field_names": list(features), "features": features}  # fmt: skip
    records = []
    for i in range(num):
        n = 10 + i  # meshes differ between trajectories
        records.append({
            "cells": rng.integers(0, n, (2 * n, 4)).astype(np.int32)[None],
            "node_type": rng.choice([0, 1, 3], n).astype(np.int32)[None, :, None],
            "mesh_pos": rng.random((1, n, 3)).astype(np.float32),
            "world_pos": rng.random((frames, n, 3)).astype(np.float32),
            "stress": (rng.random((frames, n, 1)) * 1e6).astype(np.float32),
        })  # fmt: skip
    _write_dataset(folder, meta, records, split)
    return records


def impact_plate(folder, frames=4):
    """HCMT's Impact Plate layout: 2D, dt in meta.json, per-node density/modulus, ragged hierarchy."""
    rng = np.random.default_rng(2)
    n = 15
    features = {
        "cells": {"type": "static", "shape": [1, -1, 3], "dtype": "int32"},
        "node_type": {"type": "static", "shape": [1, -1, 1], "dtype": "int32"},
        "mesh_pos": {"type": "static", "shape": [1, -1, 2], "dtype": "float32"},
        "world_pos": {"type": "dynamic", "shape": [frames, -1, 2], "dtype": "float32"},
        "stress": {"type": "dynamic", "shape": [frames, -1, 1], "dtype": "float32"},
        "density": {"type": "static", "shape": [1, -1, 1], "dtype": "float32"},
        "modulus": {"type": "static", "shape": [1, -1, 1], "dtype": "float32"},
        "lap_pe": {"type": "static", "shape": [1, -1, 8], "dtype": "float32"},
        "m_ids": {"type": "static_varlen", "shape": [-1], "dtype": "int32"},
    }
    meta = {"simulator": "ansys", "dt": 0.0002, "trajectory_length": frames,
            "field_names": [*features, "length_m_ids"], "features": features}  # fmt: skip
    record = {
        "cells": rng.integers(0, n, (1, 20, 3)).astype(np.int32),
        "node_type": rng.choice([0, 1, 3, 7], (1, n, 1)).astype(np.int32),
        "mesh_pos": rng.random((1, n, 2)).astype(np.float32),
        "world_pos": rng.random((frames, n, 2)).astype(np.float32),
        "stress": rng.random((frames, n, 1)).astype(np.float32),
        "density": np.full((1, n, 1), 7850.0, np.float32),
        "modulus": rng.random((1, n, 1)).astype(np.float32) * 2e11,
        "lap_pe": rng.random((1, n, 8)).astype(np.float32),
        "m_ids": np.concatenate([np.arange(n), np.arange(0, n, 2)]).astype(np.int32),
        "length_m_ids": np.array([0, n, n + (n + 1) // 2], np.int32),
    }
    _write_dataset(folder, meta, [record])
    return record


def test_material_attrs_only_where_uniform_over_the_deformable_nodes():
    from meshsim.datasets.importers import _material_attrs

    node_type = np.array([0, 0, 0, 1])  # the obstacle may have another material
    static = {"density": np.array([[7850.0], [7850.0], [7850.0], [1.0]]), "modulus": np.array([1e9, 2e9, 1e9, 1e9])}
    assert _material_attrs(static, node_type, 4) == {"density": 7850.0}
    static["modulus"] = np.array([2e11, 2e11, 2e11, 5.0])
    assert _material_attrs(static, node_type, 4) == {"density": 7850.0, "youngs_modulus": 2e11}
    assert _material_attrs({"density": np.ones(3)}, node_type, 4) == {}  # not one value per node


def test_deforming_plate_import_matches_source(tmp_path):
    records = deforming_plate(tmp_path / "dp")
    with pytest.raises(DataFormatError, match="no time step.*--dt"):
        import_tfrecord_dataset(tmp_path / "dp", tmp_path / "out.h5")
    report = import_tfrecord_dataset(tmp_path / "dp", tmp_path / "out.h5", dt=0.01)
    assert report["imported"] == 3 and report["dt"] == 0.01
    with TrajectoryFile(tmp_path / "out.h5") as f:
        assert f.ids == ["00000", "00001", "00002"] and f.attrs["source_simulator"] == "comsol"
        for i, rec in enumerate(records):
            traj = f.read(f"{i:05d}")
            np.testing.assert_array_equal(traj.cells, rec["cells"][0])
            np.testing.assert_array_equal(traj.node_type, rec["node_type"][0, :, 0])
            np.testing.assert_array_equal(traj.mesh_pos, rec["mesh_pos"][0])
            np.testing.assert_array_equal(traj.world_pos, rec["world_pos"])
            np.testing.assert_array_equal(traj.fields["stress"], rec["stress"][..., 0])
            assert traj.dt == 0.01 and traj.cell_type == "tetra" and traj.attrs["source_index"] == i


def test_impact_plate_import_tiles_static_fields_and_skips_ragged(tmp_path):
    rec = impact_plate(tmp_path / "impact")
    report = import_tfrecord_dataset(tmp_path / "impact", tmp_path / "out.h5")
    assert report["dt"] == 0.0002 and any("m_ids" in note for note in report["notes"])
    with TrajectoryFile(tmp_path / "out.h5") as f:
        traj = f.read("00000")
    assert traj.cell_type == "triangle" and set(traj.fields) == {"stress", "density", "modulus", "lap_pe"}
    for name in ("density", "modulus"):
        np.testing.assert_array_equal(traj.fields[name], np.repeat(rec[name][..., 0], 4, axis=0))
    np.testing.assert_array_equal(traj.fields["lap_pe"], np.repeat(rec["lap_pe"], 4, axis=0))
    # A density uniform over the plate becomes the attr the models read (see test_material_attrs too).
    assert traj.attrs["density"] == 7850.0
    assert 7 in traj.node_type  # SYMMETRIC survives
    with pytest.raises(DataFormatError, match="contradicts meta.json dt"):
        import_tfrecord_dataset(tmp_path / "impact", tmp_path / "out2.h5", dt=0.1)


def test_import_resumes_and_refuses_broken_sources(tmp_path, monkeypatch):
    deforming_plate(tmp_path / "dp", num=4)
    monkeypatch.setattr("meshsim.datasets.importers.BATCH_BYTES", 1)  # one commit per trajectory
    first = import_tfrecord_dataset(tmp_path / "dp", tmp_path / "out.h5", dt=0.01, limit=2)
    again = import_tfrecord_dataset(tmp_path / "dp", tmp_path / "out.h5", dt=0.01)
    assert (first["imported"], again["imported"], again["skipped"]) == (2, 2, 2)
    data = (tmp_path / "dp" / "train.tfrecord").read_bytes()
    (tmp_path / "dp" / "train.tfrecord").write_bytes(data[: len(data) - 100])
    with pytest.raises(DataFormatError, match="record 3 cannot be read"):
        import_tfrecord_dataset(tmp_path / "dp", tmp_path / "cut.h5", dt=0.01)
    with TrajectoryFile(tmp_path / "cut.h5") as f:  # the trajectories before the damage were committed
        assert f.ids == ["00000", "00001", "00002"] and f.attrs["import_status"] == "incomplete"
    with TrajectoryFile(tmp_path / "out.h5") as f:
        assert f.attrs["import_status"] == "complete"
    with pytest.raises(DataFormatError, match="valid.tfrecord not found.*train.tfrecord"):
        import_tfrecord_dataset(tmp_path / "dp", tmp_path / "x.h5", split="valid", dt=0.01)
    with pytest.raises(DataFormatError, match="meta.json not found"):
        import_tfrecord_dataset(tmp_path, tmp_path / "x.h5", dt=0.01)


def test_an_interrupted_import_is_never_called_valid_and_resumes_only_from_its_own_source(tmp_path, capsys):
    deforming_plate(tmp_path / "dp", num=4)
    data = (tmp_path / "dp" / "train.tfrecord").read_bytes()
    (tmp_path / "dp" / "train.tfrecord").write_bytes(data[: len(data) - 100])  # truncated inside record 3
    out = tmp_path / "part.h5"
    assert cli.main(["data", "import", str(tmp_path / "dp"), "-o", str(out), "--dt", "0.01"]) == 2
    capsys.readouterr()
    assert cli.main(["data", "inspect", str(out)]) == 2  # not "valid yes"
    text, err = capsys.readouterr()
    assert "interrupted import" in text and "valid         yes" not in text
    assert err.count("\n") == 1 and "interrupted import (3 trajectories so far)" in err
    # the source repaired: the same import resumes and completes the store
    (tmp_path / "dp" / "train.tfrecord").write_bytes(data)
    shutil.copyfile(out, tmp_path / "part2.h5")
    assert cli.main(["data", "import", str(tmp_path / "dp"), "-o", str(out), "--dt", "0.01"]) == 0
    assert cli.main(["data", "inspect", str(out)]) == 0
    # another dt, split or source extends nothing
    deforming_plate(tmp_path / "other", num=4, split="valid")
    for args, key in ((["--dt", "0.02"], "source_dt"), (["--split", "valid", "--dt", "0.01"], "source_dir")):
        folder = tmp_path / ("other" if "valid" in args else "dp")
        code = cli.main(["data", "import", str(folder), "-o", str(tmp_path / "part2.h5"), *args])
        err = capsys.readouterr().err
        assert code == 2 and key in err and "choose another -o" in err, err
    generated = tmp_path / "gen.h5"
    from meshsim.datasets import TrajectoryWriter

    TrajectoryWriter(generated).close()  # a store not made by an import
    with pytest.raises(OutputError, match="not made by"):
        import_tfrecord_dataset(tmp_path / "dp", generated, dt=0.01)


def test_import_cli_end_to_end(tmp_path, capsys):
    deforming_plate(tmp_path / "dp", num=2, split="test")
    out = tmp_path / "dp.h5"
    assert cli.main(["data", "import", str(tmp_path / "dp"), "-o", str(out), "--split", "test", "--dt", "0.02"]) == 0
    assert "imported 2 trajectories" in capsys.readouterr().out
    assert cli.main(["data", "inspect", "--json", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["num_trajectories"] == 2
    command = ["data", "import", str(tmp_path / "dp"), "-o", str(tmp_path / "x.h5"), "--split", "test"]
    bad = run(meshsim_cmd(*command), timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--dt" in bad.stderr


def test_remeshed_datasets_are_refused_with_the_reason(tmp_path):
    deforming_plate(tmp_path / "dp", num=1)
    meta = json.loads((tmp_path / "dp" / "meta.json").read_text())
    meta["features"]["world_pos"]["type"] = "dynamic_varlen"
    (tmp_path / "dp" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataFormatError, match="remeshed datasets"):
        import_tfrecord_dataset(tmp_path / "dp", tmp_path / "x.h5", dt=0.01)
    (tmp_path / "dp" / "meta.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        import_tfrecord_dataset(tmp_path / "dp", tmp_path / "x.h5", dt=0.01)


def test_a_record_that_does_not_fit_meta_json_is_named(tmp_path):
    records = deforming_plate(tmp_path / "dp", num=2)
    meta = json.loads((tmp_path / "dp" / "meta.json").read_text())
    records[1]["mesh_pos"] = records[1]["mesh_pos"].ravel()[:-1]  # one float short
    _write_dataset(tmp_path / "dp", meta, records)
    with pytest.raises(DataFormatError, match=r"record 1: feature 'mesh_pos' has 32 values.*\[1, -1, 3\]"):
        import_tfrecord_dataset(tmp_path / "dp", tmp_path / "x.h5", dt=0.01)
    with TrajectoryFile(tmp_path / "x.h5") as f:
        assert f.ids == ["00000"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=600), keep=st.integers(0, 400))
def test_fuzz_damaged_tfrecord_is_always_a_data_format_error(tmp_path, blob, keep):
    folder = tmp_path / "fz"
    if not (folder / "meta.json").exists():
        deforming_plate(folder, num=1)
        (tmp_path / "good.bin").write_bytes((folder / "train.tfrecord").read_bytes())
    good = (tmp_path / "good.bin").read_bytes()
    (folder / "train.tfrecord").write_bytes(good[:keep] + blob)  # a valid start, then garbage
    out = tmp_path / "fz.h5"
    out.unlink(missing_ok=True)
    try:
        import_tfrecord_dataset(folder, out, dt=0.01)
    except DataFormatError as err:
        assert "\n" not in str(err)
