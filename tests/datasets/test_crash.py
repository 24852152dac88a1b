"""A writer killed with SIGKILL at any moment leaves a valid store holding every finished trajectory."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
from procs import read_line, run, spawn

from meshsim.datasets import TrajectoryFile, TrajectoryWriter

WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from meshsim.datasets import Trajectory, TrajectoryWriter

    def make(i):
        rng = np.random.default_rng(i)
        n, t = 400, 40
        return Trajectory(cells=rng.integers(0, n, (800, 3)).astype(np.int32),
                          mesh_pos=rng.random((n, 2)).astype(np.float32), node_type=np.zeros(n, np.int32),
                          world_pos=rng.random((t, n, 2)).astype(np.float32), dt=0.01,
                          fields={"stress": rng.random((t, n)).astype(np.float32)})

    with TrajectoryWriter(sys.argv[1]) as w:
        print("resumed", len(w.ids), flush=True)
        for i in range(int(sys.argv[2])):
            if f"{i:03d}" not in w.ids:
                w.write(f"{i:03d}", make(i))
                print("done", i, flush=True)
    """
)


def _expected(i):
    rng = np.random.default_rng(i)
    rng.integers(0, 400, (800, 3))
    rng.random((400, 2))
    return rng.random((40, 400, 2)).astype(np.float32)


def test_sigkill_mid_write_keeps_every_finished_trajectory_and_resumes(tmp_path):
    path, total = tmp_path / "crash.h5", 12
    rng = random.Random(7)
    for attempt in range(8):
        with spawn([sys.executable, "-c", WRITER, str(path), str(total)], stdout=subprocess.PIPE, text=True) as proc:
            finished = []
            assert read_line(proc, timeout=120).startswith("resumed")
            for _ in range(rng.randint(1, 2)):
                line = read_line(proc, timeout=120)
                if line.startswith("done"):
                    finished.append(f"{int(line.split()[1]):03d}")
            time.sleep(rng.uniform(0.0, 0.05))  # land somewhere inside the next write
            os.kill(proc.pid, signal.SIGKILL)
            rest = proc.stdout.read()
            proc.wait(timeout=60)
        finished += [f"{int(x.split()[1]):03d}" for x in rest.splitlines() if x.startswith("done")]
        with TrajectoryFile(path) as f:
            assert set(finished) <= set(f.ids), f"attempt {attempt}: a finished trajectory was lost"
            for traj_id in f.ids:
                np.testing.assert_array_equal(f.read(traj_id).world_pos, _expected(int(traj_id)))
    run([sys.executable, "-c", WRITER, str(path), str(total)], check=True, timeout=300)
    with TrajectoryWriter(path) as w:
        assert w.ids == [f"{i:03d}" for i in range(total)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crash.h5"]  # killed writers' temporaries removed


READER = textwrap.dedent(
    """
    import sys, time
    from meshsim.datasets import TrajectoryFile
    path, stop = sys.argv[1], time.time() + float(sys.argv[2])
    opened = 0
    while time.time() < stop:
        with TrajectoryFile(path) as f:
            for traj_id in f.ids:
                f.read(traj_id)  # full validation of every trajectory of the version we opened
        opened += 1
    print(opened)
    """
)


def test_readers_never_see_a_partial_store_while_a_writer_runs(tmp_path):
    path = tmp_path / "busy.h5"
    with TrajectoryWriter(path) as w:
        w.write("000", _make(0))
        with spawn([sys.executable, "-c", READER, str(path), "2"], stdout=subprocess.PIPE, text=True) as reader:
            time.sleep(0.5)  # let the reader start its loop
            for i in range(1, 25):
                w.write(f"{i:03d}", _make(i))
            out, _ = reader.communicate(timeout=60)
    assert reader.returncode == 0 and int(out) > 1
    with TrajectoryFile(path) as f:
        assert len(f.ids) == 25


def _make(i):
    from meshsim.datasets import Trajectory

    rng = np.random.default_rng(i)
    return Trajectory(
        cells=rng.integers(0, 300, (500, 3)).astype(np.int32),
        mesh_pos=rng.random((300, 2)).astype(np.float32),
        node_type=np.zeros(300, np.int32),
        world_pos=rng.random((30, 300, 2)).astype(np.float32),
        dt=0.01,
    )
