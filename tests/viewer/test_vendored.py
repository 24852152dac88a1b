"""The vendored three.js is the file VENDORED.md describes, with its licence, and the page imports only it."""

import hashlib
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "viewer" / "static"


def test_vendored_three_matches_its_record():
    bundle = (STATIC / "vendor" / "three.module.min.js").read_bytes()
    record = (STATIC / "vendor" / "VENDORED.md").read_text()
    assert hashlib.sha256(bundle).hexdigest() in record
    assert f"{len(bundle)} bytes" in record and "three@0.187.0" in record
    assert "MIT License" in (STATIC / "vendor" / "LICENSE").read_text()


def test_page_loads_nothing_from_the_network():
    for path in STATIC.glob("*.*"):
        text = path.read_text()
        assert not re.search(r"https?://", text), f"{path.name} references a remote URL"
        for module in re.findall(r'from\s+"([^"]+)"', text):
            assert module.startswith("./"), f"{path.name} imports {module} (bare or remote import)"
