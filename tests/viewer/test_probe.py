"""Analysis data on the server: one node's history (/api/probe), pane labels from the file's metadata, node-type
names, and every face of a tetrahedral mesh for the clip plane."""

import dataclasses
import json

import numpy as np
import pytest
from meshsim.viewer.sample import sample_trajectory
from meshsim.viewer.source import FrameSource

from meshsim.datasets import TrajectoryFile, TrajectoryWriter
from meshsim.mesh.topology import boundary_facets

from .test_server import get


def probe(server, query):
    status, ctype, body = get(server, f"/api/probe?{query}")
    return status, (json.loads(body) if ctype == "application/json" else body.decode())


@pytest.fixture(scope="module")
def tri(tri_rollout):
    with TrajectoryFile(tri_rollout) as store:
        return store.read("00001")


def test_probe_series_equal_the_file_for_every_quantity(tri_server, tri):
    status, data = probe(tri_server, "traj=00001&node=57&quantity=y")
    assert status == 200 and data["node"] == 57 and data["unit"] == "m"
    np.testing.assert_allclose(data["time"], np.arange(12) * 0.01)
    np.testing.assert_allclose(data["series"]["gt"], tri.world_pos[:, 57, 1], rtol=1e-6)
    np.testing.assert_allclose(data["series"]["pred"], tri.pred_world_pos[:, 57, 1], rtol=1e-6)
    data = probe(tri_server, "traj=00001&node=57&quantity=error")[1]
    assert list(data["series"]) == ["pred"]  # one series: |pred - gt|
    np.testing.assert_allclose(data["series"]["pred"],
                               np.linalg.norm(tri.pred_world_pos[:, 57] - tri.world_pos[:, 57], axis=1), rtol=1e-5)
    data = probe(tri_server, "traj=00001&node=57&quantity=velocity")[1]
    assert list(data["series"]) == ["gt"]  # stored for the ground truth only
    np.testing.assert_allclose(data["series"]["gt"], np.linalg.norm(tri.fields["velocity"][:, 57], axis=1), rtol=1e-5)
    data = probe(tri_server, "traj=00001&node=57&quantity=displacement")[1]
    np.testing.assert_allclose(data["series"]["pred"],
                               np.linalg.norm(tri.pred_world_pos[:, 57] - tri.mesh_pos[57], axis=1), atol=1e-7)


def test_probe_matches_the_per_frame_fields_the_page_colours_with(tri_rollout):
    with FrameSource(tri_rollout) as source:
        for quantity in ("speed", "height", "error", "node_type"):
            series = source.node_series("00000", 3, quantity, "pred")
            frames = [source.field("00000", quantity, t, "pred")[3] for t in range(12)]
            np.testing.assert_allclose(series, frames, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("query, status", [
    ("traj=00001&node=400&quantity=y", 404), ("traj=00001&node=-1&quantity=y", 400),
    ("traj=00001&node=1&quantity=pressure", 404), ("traj=00001&quantity=y", 400), ("traj=nope&node=1&quantity=y", 404),
])  # fmt: skip
def test_bad_probe_requests_get_a_short_message(tri_server, query, status):
    got, text = probe(tri_server, query)
    assert got == status and text.count("\n") == 1


def test_node_types_have_names_and_every_tetra_face_is_served(tri_server, tet_rollout, serve_file):
    info = json.loads(get(tri_server, "/api/traj?id=00000")[2])
    assert info["node_types"] == {"0": "normal", "3": "handle"}
    assert {"x", "y", "z", "error", "displacement"} <= set(info["probe_quantities"])
    server = serve_file(tet_rollout)
    with TrajectoryFile(tet_rollout) as store:
        cells = store.read("00000").cells
    faces = np.frombuffer(get(server, "/api/cells?traj=00000&faces=all")[2], "<u4").reshape(-1, 3)
    surface = np.frombuffer(get(server, "/api/cells?traj=00000")[2], "<u4").reshape(-1, 3)
    unique = {tuple(sorted(f)) for c in cells for f in ([c[0], c[1], c[2]], [c[0], c[1], c[3]], [c[0], c[2], c[3]],
                                                           [c[1], c[2], c[3]])}  # fmt: skip
    assert len(faces) == len(unique) > len(surface) == len(boundary_facets(cells))
    assert {tuple(sorted(f)) for f in faces} == unique
    assert get(server, "/api/cells?traj=00000&faces=some")[0] == 400


def write_labelled(path, rollout, attrs, root=None):
    traj = sample_trajectory("triangle", 64, 4, rollout=rollout)
    traj = dataclasses.replace(traj, attrs={**traj.attrs, **attrs})
    with TrajectoryWriter(path, rollout=rollout, durable=False, attrs=root or {}) as writer:
        writer.write("00000", traj)
    return path


def test_pane_labels_come_from_the_files_metadata(tmp_path, tri_rollout):
    def labels(path):
        with FrameSource(path) as source:
            return {src: label["text"] for src, label in source.info("00000")["labels"].items()}

    # meshsim study writes its learned rollouts as plain trajectories with attribute source="learned"
    assert labels(write_labelled(tmp_path / "study.h5", False, {"source": "learned"})) == {"gt": "prediction (learned)"}
    solver = write_labelled(tmp_path / "gen.h5", False, {"solver_dt": 1e-5}, root={"scenario": "drop-test-3d"})
    assert labels(solver) == {"gt": "simulation (solver)"}
    rollout = write_labelled(tmp_path / "roll.h5", True, {"solver_dt": 1e-5, "rollout_checkpoint_step": 1200})
    assert labels(rollout) == {"gt": "ground truth (solver)", "pred": "prediction (learned, step 1200)"}
    assert labels(tri_rollout) == {"gt": "ground truth", "pred": "prediction (learned)"}  # analytic sample
