"""Shared test set-up. Area-specific fixtures live in tests/<area>/conftest.py."""

import os
import shutil

import pytest

# Keep Warp quiet and its kernel cache shared between runs (compiles are slow on CPU).
os.environ.setdefault("WARP_CACHE_PATH", os.path.expanduser("~/.cache/warp"))


def pytest_collection_modifyitems(config, items):
    if shutil.which("chromium") or os.path.exists("/usr/bin/chromium"):
        return
    skip = pytest.mark.skip(reason="Debian chromium not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
