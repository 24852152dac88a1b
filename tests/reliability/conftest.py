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

import pytest

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
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("zygote.py"))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
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
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def zygote():
    z = Zygote()
    yield z
    z.close()
