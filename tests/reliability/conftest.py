"""Shared pieces of the reliability suite: a tally of what was tried (written as JSON for docs/reliability.md),
a forking `meshsim` for fault injection, and the one-line-error check every bad input must pass."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from procs import spawn

_TALLY: Counter = Counter()
_REPORT: dict = {}


@pytest.fixture(scope="session")
def tally():
    """tally[name] += n: counts of inputs, faults and requests; tally.note(key, value) for measured figures."""
    return _Tally()


class _Tally:
    def __getitem__(self, key):
        return _TALLY[key]

    def __setitem__(self, key, value):
        _TALLY[key] = value

    def note(self, key, value):
        _REPORT[key] = value


def pytest_sessionfinish(session, exitstatus):
    if not _TALLY and not _REPORT:
        return
    base = session.config._tmp_path_factory.getbasetemp() if hasattr(session.config, "_tmp_path_factory") else None
    out = Path(base or ".") / "reliability_counts.json"
    out.write_text(json.dumps({"counts": dict(sorted(_TALLY.items())), "measured": _REPORT}, indent=1))
    session.config._reliability_json = out


def pytest_terminal_summary(terminalreporter, config):
    out = getattr(config, "_reliability_json", None)
    if out is not None:
        terminalreporter.write_line(f"reliability counts ({out}):")
        terminalreporter.write_line(out.read_text())


def assert_one_error_line(code: int, err: str, *words: str) -> str:
    """Exit code 2, exactly one stderr line `meshsim: error: ...` naming the problem, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit code {code}, stderr: {err!r}"
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("meshsim: error: "), f"not one error line: {err!r}"
    for word in words:
        assert word.lower() in lines[0].lower(), f"{word!r} not named in {lines[0]!r}"
    return lines[0]


class Zygote:
    """Runs `meshsim ARGV` in forked children of one pre-imported process (tests/reliability/zygote.py)."""

    def __init__(self):
        self._spawned = spawn([sys.executable, str(Path(__file__).with_name("zygote.py"))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.proc = self._spawned.__enter__()  # its own process group: forked commands end with it
        self._buf = b""

    def _line(self, timeout: float | None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError("zygote died")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def run(self, argv: list[str], cwd: Path, log: Path, kill_after: float | None = None,
            timeout: float = 300.0) -> tuple[int, bool]:
        """Run to the end, or SIGKILL the child after `kill_after` seconds; returns (returncode, killed)."""
        self.proc.stdin.write((json.dumps({"argv": argv, "cwd": str(cwd), "log": str(log)}) + "\n").encode())
        pid = self._line(60.0)["pid"]
        done = self._line(kill_after if kill_after is not None else timeout)
        if done is None:
            os.kill(pid, signal.SIGKILL)
            done = self._line(60.0)
            return done["returncode"], done["returncode"] == -signal.SIGKILL
        return done["returncode"], False

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        finally:
            self._spawned.__exit__(None, None, None)


@pytest.fixture(scope="session")
def zygote():
    z = Zygote()
    yield z
    z.close()


def good_store(path: Path, num: int = 2, frames: int = 10) -> Path:
    """A clamped 2-D strip swinging, with a small obstacle triangle moving down: a valid trajectory store."""
    from meshsim.datasets import NodeType, Trajectory, TrajectoryWriter
    from meshsim.mesh import rectangle

    plate = rectangle((1.0, 0.3), (5, 2))
    ball = np.array([[0.6, 0.5], [0.7, 0.5], [0.65, 0.6]])
    pos = np.concatenate([plate.points[:, :2], ball]).astype(np.float32)
    n = len(plate.points)
    cells = np.concatenate([plate.cells, [[n, n + 1, n + 2]]]).astype(np.int32)
    node_type = np.zeros(len(pos), np.int32)
    node_type[:n][plate.points[:, 0] == plate.points[:, 0].min()] = int(NodeType.HANDLE)
    node_type[n:] = int(NodeType.OBSTACLE)
    t = np.arange(frames)[:, None]
    with TrajectoryWriter(path) as w:
        for k in range(num):
            world = np.repeat(pos[None], frames, 0)
            world[:, :n, 1] += (0.02 + 0.01 * k) * np.sin(0.5 * t) * pos[None, :n, 0] ** 2
            world[:, n:, 1] -= 0.01 * t
            stress = np.abs(world[..., 1] - pos[None, :, 1]) * 1e3
            w.write(f"{k:05d}", Trajectory(cells=cells, mesh_pos=pos, node_type=node_type, world_pos=world,
                                           dt=0.01, fields={"stress": stress.astype(np.float32)},
                                           attrs={"density": 1000.0, "youngs_modulus": 1e6}))
    return path


TRAIN_YAML = """\
train_data: [{data}]
model: {{kind: mgn, latent: 8, mlp_layers: 1, blocks: 1, contact_radius: 0.05}}
steps: 20
checkpoint_interval: 20
log_interval: 1
device: cpu
"""



@pytest.fixture(scope="session")
def good_inputs(tmp_path_factory):
    """A valid store, a tiny MGN trained on it (last.pt) and its rollout file: what the bad inputs are made from."""
    from meshsim.rollout import rollout_file
    from meshsim.train.trainer import train_from_file

    folder = tmp_path_factory.mktemp("good")
    store = good_store(folder / "store.h5")
    (folder / "train.yaml").write_text(TRAIN_YAML.format(data=store))
    train_from_file(folder / "train.yaml", run_dir=folder / "run")
    ckpt = folder / "run" / "checkpoints" / "last.pt"
    rollout_file(ckpt, store, folder / "rollout.h5", device="cpu")
    return {"folder": folder, "store": store, "ckpt": ckpt, "rollout": folder / "rollout.h5"}
