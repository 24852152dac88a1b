"""The viewer's HTTP server: endpoints return the file's data; bad and hostile requests get short 4xx answers."""

import http.client
import json
import signal
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from meshsim.viewer.server import open_viewer
from procs import meshsim_cmd, read_line, run, spawn

from meshsim.datasets import TrajectoryFile
from meshsim.errors import ConfigError, DataFormatError


def get(server, path, method="GET", host=None):
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host or f"127.0.0.1:{server.server_address[1]}")
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, response.getheader("Content-Type"), body


def test_meta_and_trajectory_describe_the_file(tri_server):
    status, ctype, body = get(tri_server, "/api/meta")
    meta = json.loads(body)
    assert status == 200 and ctype == "application/json"
    assert meta["is_rollout"] and [t["id"] for t in meta["trajectories"]] == ["00000", "00001"]
    assert [t["num_frames"] for t in meta["trajectories"]] == [12, 12]
    assert len(meta["colormap"]["srgb"]) == 256
    info = json.loads(get(tri_server, "/api/traj?id=00001")[2])
    assert info["sources"] == ["gt", "pred"] and info["num_nodes"] == 400 and info["cell_type"] == "triangle"
    assert {"error", "speed", "height", "velocity", "displacement", "node_type"} <= set(info["fields"])
    assert info["default_field"] == "error" and len(info["bounds"]) == 2


def test_binary_endpoints_return_the_frames(tri_server, tri_rollout):
    with TrajectoryFile(tri_rollout) as store:
        traj = store.read("00001")
    status, ctype, body = get(tri_server, "/api/cells?traj=00001")
    assert status == 200 and ctype == "application/octet-stream"
    np.testing.assert_array_equal(np.frombuffer(body, "<u4").reshape(-1, 3), traj.cells)
    for src, expected in (("gt", traj.world_pos[7]), ("pred", traj.pred_world_pos[7])):
        body = get(tri_server, f"/api/positions?traj=00001&t=7&src={src}")[2]
        np.testing.assert_array_equal(np.frombuffer(body, "<f4").reshape(-1, 3), expected)
    body = get(tri_server, "/api/field?traj=00001&name=error&t=7&src=pred")[2]
    np.testing.assert_allclose(np.frombuffer(body, "<f4"),
                               np.linalg.norm(traj.pred_world_pos[7] - traj.world_pos[7], axis=1), rtol=1e-6)
    lo, hi = json.loads(get(tri_server, "/api/range?traj=00001&name=height")[2])
    assert lo <= traj.fields["height"].min() and hi >= traj.fields["height"].max()
    status, _, body = get(tri_server, "/api/positions?traj=00001&t=7", method="HEAD")
    assert status == 200 and body == b""


def test_blocks_of_frames_equal_single_frames_and_stop_at_the_end(tri_server, tri_rollout):
    with TrajectoryFile(tri_rollout) as store:
        traj = store.read("00000")
    n = traj.world_pos.shape[1]
    body = get(tri_server, "/api/positions?traj=00000&t=8&count=16&src=pred")[2]  # frames 8..11 of 12
    np.testing.assert_array_equal(np.frombuffer(body, "<f4").reshape(4, n, 3), traj.pred_world_pos[8:12])
    body = get(tri_server, "/api/field?traj=00000&name=error&t=2&count=3&src=pred")[2]
    expected = np.linalg.norm(traj.pred_world_pos[2:5] - traj.world_pos[2:5], axis=2)
    np.testing.assert_allclose(np.frombuffer(body, "<f4").reshape(3, n), expected, rtol=1e-6)


@pytest.mark.parametrize("path, status", [
    ("/api/positions?traj=00000", 400),                       # missing t
    ("/api/positions?traj=00000&t=0&count=0", 400),
    ("/api/positions?traj=00000&t=0&count=65", 400),          # more than a block's worth
    ("/api/positions?traj=00000&t=0&count=x", 400),
    ("/api/positions?traj=00000&t=-1", 400),
    ("/api/positions?traj=00000&t=1e3", 400),
    ("/api/positions?traj=00000&t=%00", 400),
    ("/api/positions?traj=00000&t=1&t=2", 400),               # given twice
    ("/api/positions?traj=00000&t=12", 404),                  # one past the end
    ("/api/positions?traj=00000&t=99999999999", 400),         # too long to be a frame
    ("/api/positions?traj=nope&t=0", 404),
    ("/api/positions?traj=00000&t=0&src=truth", 404),
    ("/api/field?traj=00000&name=pressure&t=0", 404),
    ("/api/field?traj=00000&name=velocity&t=0&src=pred", 404),  # stored for gt only
    ("/api/field?traj=00000&t=0", 400),
    ("/api/traj", 400),
    ("/api/range?traj=00000&name=", 400),
    ("/api/positions?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", 400),  # too many fields
    ("/api/nothing", 404),
    ("/api/meta/../../etc/passwd", 404),
])
def test_bad_requests_get_a_short_message(tri_server, path, status):
    got, ctype, body = get(tri_server, path)
    assert got == status and ctype.startswith("text/plain")
    assert 0 < len(body) < 200 and body.count(b"\n") == 1


@pytest.mark.parametrize("path", [
    "/static/../source.py", "/static/..%2fsource.py", "/static/%2e%2e/source.py", "/static/%2e%2e%2fserver.py",
    "/static/..%252fsource.py", "/static/vendor/../../server.py", "/../../../../etc/passwd", "//etc/passwd",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/..\\source.py", "/static/..%5csource.py",
    "/static/index.html%00.py", "/etc/passwd", "/static/", "/static/vendor", "/tri_rollout.h5",
    "/api/../tri_rollout.h5",
])
def test_nothing_outside_the_static_files_is_served(tri_server, path):
    status, _, body = get(tri_server, path)
    assert status == 404
    assert b"root:" not in body and b"import" not in body


def test_static_files_and_page_are_served(tri_server):
    status, ctype, body = get(tri_server, "/")
    assert status == 200 and ctype.startswith("text/html") and b"/static/app.js" in body
    status, ctype, body = get(tri_server, "/static/vendor/three.module.min.js")
    assert status == 200 and ctype.startswith("text/javascript") and len(body) > 100_000


def test_foreign_host_header_is_refused_on_loopback(tri_server):
    """DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 must not read the data."""
    assert get(tri_server, "/api/meta", host="evil.example:80")[0] == 403
    assert get(tri_server, "/api/meta", host=f"localhost:{tri_server.server_address[1]}")[0] == 200


def test_garbage_request_lines_do_not_hurt_the_server(tri_server):
    for raw in (b"GARBAGE\r\n\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"\x00\xff\r\n\r\n",
                b"POST /api/meta HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"):
        with socket.create_connection(tri_server.server_address[:2], timeout=10) as sock:
            sock.sendall(raw)
            answer = sock.recv(200)
            assert answer.startswith(b"HTTP/1.") and answer.split()[1][:1] in (b"4", b"5")
    assert get(tri_server, "/api/meta")[0] == 200  # still serving


def test_concurrent_clients_read_consistent_frames(tri_server, tri_rollout):
    """One lock around h5py: parallel requests all get exactly the stored frames."""
    with TrajectoryFile(tri_rollout) as store:
        expected = {t: store.frame("00000", t, "pred") for t in range(12)}

    def fetch(t):
        body = get(tri_server, f"/api/positions?traj=00000&t={t}&src=pred")[2]
        return t, np.frombuffer(body, "<f4").reshape(-1, 3)

    with ThreadPoolExecutor(8) as pool:
        for t, frame in pool.map(fetch, [t % 12 for t in range(96)]):
            np.testing.assert_array_equal(frame, expected[t])


def test_refuses_unusable_inputs_before_listening(tmp_path, tri_rollout):
    garbage = tmp_path / "x.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(DataFormatError):
        open_viewer(garbage)
    with pytest.raises(DataFormatError, match="no trajectory"):
        open_viewer(tri_rollout, traj="99999")
    with pytest.raises(ConfigError, match="port"):
        open_viewer(tri_rollout, port=70000)


def test_cli_view_prints_the_url_serves_and_stops_on_ctrl_c(tri_rollout, tmp_path):
    # A terminal delivers Ctrl-C to a process whose SIGINT is not ignored; a test runner started in the
    # background of a non-interactive shell hands SIG_IGN down to its children, so restore the default.
    with spawn(meshsim_cmd("view", tri_rollout, "--no-browser", "--traj", "00001"), stdout=subprocess.PIPE,
               stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
               ) as proc:
        line = read_line(proc, timeout=120)
        assert "http://127.0.0.1:" in line and "traj=00001" in line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/meta")
        assert json.loads(conn.getresponse().read())["default_traj"] == "00001"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0 and "stopped" in out and "Traceback" not in err
    bad = tmp_path / "bad.h5"
    bad.write_text("hello")
    result = run(meshsim_cmd("view", bad, "--no-browser"), timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "meshsim: error:" in result.stderr


def test_damaged_frames_are_refused_on_start_or_answered_with_500(tmp_path, tri_rollout, serve_file):
    """Positions of the sampled frames are read before listening (bounds, default colour range); a damaged
    field frame found later gets a 500 naming the dataset and frame, and the other frames still work."""
    import h5py

    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(open(tri_rollout, "rb").read())
    with h5py.File(damaged, "r+") as f:
        f["trajectories/00000/world_pos"][5, 0, 0] = np.inf
    with pytest.raises(DataFormatError, match=r"world_pos\[5\]"):
        open_viewer(damaged)
    with h5py.File(damaged, "r+") as f:
        f["trajectories/00000/world_pos"][5, 0, 0] = 0.0
        f["trajectories/00000/fields/height"][5, 0] = np.nan
    server = serve_file(damaged)
    status, _, body = get(server, "/api/field?traj=00000&name=height&t=5")
    assert status == 500 and b"fields/height frame 5" in body and body.count(b"\n") == 1
    assert get(server, "/api/field?traj=00000&name=height&t=4")[0] == 200
