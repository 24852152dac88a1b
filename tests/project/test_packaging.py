"""A non-editable wheel carries the whole package: kernels/, viewer/ and data/ inside the meshsim namespace."""

import sys
import zipfile
from pathlib import Path

from procs import run

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_installs_and_imports(tmp_path):
    run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path / "dist")],
        check=True, timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("meshsim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for required in ("meshsim/cli.py", "meshsim/kernels/__init__.py", "meshsim/viewer/__init__.py",
                     "meshsim/data/__init__.py"):
        assert required in names, required
    assert not any(n.startswith(("kernels/", "viewer/", "data/", "tests/")) for n in names), "generic top-level name"
    # Scene recipes and viewer assets that exist in the tree must be in the wheel too.
    for path in list((ROOT / "data").glob("*.yaml")) + list((ROOT / "viewer" / "static").rglob("*")):
        if path.is_file():
            rel = "meshsim/" + path.relative_to(ROOT).as_posix()
            assert rel in names, f"{rel} missing from the wheel"

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "import meshsim, meshsim.kernels, meshsim.viewer, meshsim.data, meshsim.cli; print(meshsim.__file__)"
    out = run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
              timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(site))
