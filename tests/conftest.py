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


def _cuda_reason() -> str | None:
    """Why CUDA tests cannot run here (None when they can): torch and Warp must both see a GPU."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    import warp as wp

    wp.config.quiet = True
    if not wp.is_cuda_available():
        return "torch sees CUDA but Warp does not (driver / toolkit mismatch)"
    return None


def devices() -> list:
    """"cpu" and "cuda" as pytest params; cuda is skipped, with the reason, where it is missing (as Warp's tests do)."""
    reason = _cuda_reason()
    return ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(reason is not None, reason=reason or ""))]


def pytest_generate_tests(metafunc):
    """Every test that takes a `device` argument runs on each device, unless it parametrizes `device` itself."""
    if "device" in metafunc.fixturenames and not any(
        "device" in m.args[0] for m in metafunc.definition.iter_markers("parametrize")
    ):
        metafunc.parametrize("device", devices())
