"""Processes started by tests: each in a session of its own, bounded by a timeout, and ended with every
descendant on every way out of the test (pass, failure, timeout, pytest-timeout, Ctrl-C, SIGTERM to pytest).

    from procs import run, spawn, read_line
    out = run([sys.executable, "-m", "meshsim", "--version"], timeout=60)   # CompletedProcess, text
    with spawn([...], stdout=subprocess.PIPE) as proc:                       # Popen; stopped on exit
        line = read_line(proc, timeout=60)

Stopping is SIGTERM to the process group first (torchrun forwards it to its workers, which it starts in
sessions of their own), then SIGKILL to the group and to every descendant seen before the first signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

GRACE_S = 10.0  # from SIGTERM to SIGKILL
LIVE: set[subprocess.Popen] = set()  # started and not yet stopped: conftest stops these at session end


def meshsim_cmd(*args) -> list[str]:
    """`python -m meshsim ARGS` with this interpreter."""
    return [sys.executable, "-m", "meshsim", *map(str, args)]


def run(cmd: list[str], timeout: float, *, input: str | None = None, check: bool = False,
        **popen_kw) -> subprocess.CompletedProcess:
    """subprocess.run with captured text output, in a new session; on timeout the whole group is killed and the
    test fails with the command's last stderr lines."""
    popen_kw.setdefault("stdout", subprocess.PIPE)
    popen_kw.setdefault("stderr", subprocess.PIPE)
    popen_kw.setdefault("text", True)
    if input is not None:
        popen_kw["stdin"] = subprocess.PIPE
    with spawn(cmd, **popen_kw) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(proc)
            out, err = proc.communicate()
            raise AssertionError(f"{' '.join(map(str, cmd))} ran past {timeout:g} s and was killed with its "
                                 f"process group; stderr tail:\n{(err or '')[-3000:]}") from None
    done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done


@contextlib.contextmanager
def spawn(cmd: list[str], **popen_kw) -> Iterator[subprocess.Popen]:
    """Popen in a new session; the process, its group and its descendants are stopped when the block exits."""
    proc = subprocess.Popen(cmd, start_new_session=True, **popen_kw)
    LIVE.add(proc)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, grace: float = GRACE_S) -> None:
    """End `proc`, its process group and every descendant (idempotent)."""
    kids = descendants(proc.pid)
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc.pid, signal.SIGKILL)  # members left behind even when the leader already exited
    for pid in kids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group != os.getpgrp():
                _signal_group(group, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()
    LIVE.discard(proc)


def stop_all() -> None:
    for proc in list(LIVE):
        stop(proc, grace=2.0)


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The next line of proc.stdout, or a test failure after `timeout` seconds (a readline that cannot hang)."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        raise AssertionError(f"no line from pid {proc.pid} within {timeout:g} s (exit code {proc.poll()})")
    return box[0]


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`, children first (from /proc; empty where there is no /proc)."""
    parents: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        parents.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for kid in parents.get(todo.pop(), []):
            found.append(kid)
            todo.append(kid)
    return found


def _signal_group(group: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)

