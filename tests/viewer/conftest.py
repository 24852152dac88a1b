"""Sample files and a running viewer server shared by the viewer tests."""

import threading

import pytest
from meshsim.viewer.browser import headless_chromium
from meshsim.viewer.sample import write_sample
from meshsim.viewer.server import open_viewer


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("viewer_samples")


@pytest.fixture(scope="session")
def tri_rollout(sample_dir):
    """Rollout, triangles, 2 trajectories of 12 frames, ~400 nodes."""
    return write_sample(sample_dir / "tri_rollout.h5", "triangle", nodes=400, frames=12, trajectories=2)


@pytest.fixture(scope="session")
def tet_rollout(sample_dir):
    return write_sample(sample_dir / "tet_rollout.h5", "tetra", nodes=300, frames=8)


@pytest.fixture(scope="session")
def particles_gt(sample_dir):
    """Ground truth only (not a rollout): particles."""
    return write_sample(sample_dir / "particles.h5", "particles", nodes=225, frames=6, rollout=False)


def start_server(path, traj=None):
    server = open_viewer(path, traj=traj)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def stop_server(server):
    server.shutdown()
    server.server_close()
    server.source.close()


@pytest.fixture
def serve_file():
    """Start a viewer server for a path (stopped after the test): serve_file(path) -> server."""
    servers = []

    def serve(path, traj=None):
        servers.append(start_server(path, traj))
        return servers[-1]

    yield serve
    for server in servers:
        stop_server(server)


@pytest.fixture(scope="module")
def tri_server(tri_rollout):
    server = start_server(tri_rollout)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for one test module (closed, with its processes, when the module ends)."""
    with headless_chromium() as browser:
        yield browser
