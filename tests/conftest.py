"""Shared test set-up. Area-specific fixtures live in tests/<area>/conftest.py."""

import os
import shutil
import signal

import procs
import pytest

# Keep Warp quiet and its kernel cache shared between runs (compiles are slow on CPU).
os.environ.setdefault("WARP_CACHE_PATH", os.path.expanduser("~/.cache/warp"))


def pytest_configure(config):
    # A SIGTERM to pytest (a CI job cancelled, `kill`) unwinds like Ctrl-C, so every test's `finally` runs and
    # the processes it started (tests/procs.py) are stopped with their process groups.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


_PYTEST_PID = os.getpid()


def _terminated(signum, frame):
    if os.getpid() != _PYTEST_PID:  # a forked child inherited the handler: die as SIGTERM would have it
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise KeyboardInterrupt("SIGTERM")


def pytest_sessionfinish(session, exitstatus):
    procs.stop_all()  # a safety net: each test already stops what it started


def pytest_collection_modifyitems(config, items):
    if shutil.which("chromium") or os.path.exists("/usr/bin/chromium"):
        return
    skip = pytest.mark.skip(reason="Debian chromium not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
