"""tests/procs.py, the one way tests start processes: a timeout or a failing test ends the whole tree, including
children that started sessions of their own (as torchrun's workers do)."""

import os
import subprocess
import sys
import time

import pytest
from procs import read_line, run, spawn

# A parent that starts a sleeper in a new session (like torchrun's workers), prints its pid, then sleeps too.
TREE = """
import subprocess, sys, time
kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
print(kid.pid, flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pid: int, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_a_timeout_kills_the_tree_and_fails_the_test(tmp_path):
    pid_file = tmp_path / "pid"
    code = TREE.replace("print(kid.pid, flush=True)", f"open({str(pid_file)!r}, 'w').write(str(kid.pid))")
    started = time.monotonic()
    with pytest.raises(AssertionError, match="ran past 3 s"):
        run([sys.executable, "-c", code], timeout=3)
    assert time.monotonic() - started < 30
    assert _gone(int(pid_file.read_text()))


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_leaving_a_spawn_block_by_an_error_kills_the_tree():
    with pytest.raises(RuntimeError), spawn([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True) as proc:
        kid = int(read_line(proc, timeout=60))
        raise RuntimeError("the test failed here")
    assert _gone(proc.pid) and _gone(kid)


def test_read_line_cannot_hang():
    with spawn([sys.executable, "-c", "import time; time.sleep(300)"], stdout=subprocess.PIPE, text=True) as proc:
        with pytest.raises(AssertionError, match="no line"):
            read_line(proc, timeout=1)
