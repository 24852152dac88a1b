"""`make check-cuda`: every Warp module of meshsim compiles to CUDA PTX on this GPU-less machine.

The compile (about two minutes on 2 CPU cores) is cached under ~/.cache/meshsim/check_cuda, keyed by a hash of
the Warp version, the tool and every source file that imports warp: an edit to Warp code reruns it.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import warp

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "check_cuda.py"
SOURCES = sorted([*(ROOT / "meshsim").rglob("*.py"), *(ROOT / "kernels").rglob("*.py")])
WARP_SOURCES = [p for p in SOURCES if "import warp" in p.read_text()] + [TOOL]  # only these can change a module


def _key() -> str:
    h = hashlib.sha256(warp.__version__.encode())
    for path in WARP_SOURCES:
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="module")
def report():
    cache = Path(os.environ.get("MESHSIM_CACHE", Path.home() / ".cache" / "meshsim")) / "check_cuda"
    path = cache / f"{_key()}.json"
    if not path.exists():
        run = subprocess.run([sys.executable, str(TOOL)], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(run.stdout.strip().splitlines()[-1])
        tmp.replace(path)
    return json.loads(path.read_text())


def test_every_warp_module_compiles_for_cuda(report):
    assert report["ok"], report["errors"]
    assert report["arches"] == [75, 80, 90]
    assert report["compiled"] == report["modules"] * 3 and report["ptx_files"] >= report["compiled"]


def test_discovery_finds_every_kernel_a_grep_finds(report):
    """Independent of the tool: files with `@wp.kernel`; each must own one of the compiled modules."""
    decorated = [p for p in SOURCES if re.search(r"^\s*@wp\.kernel\b", p.read_text(), re.M)]
    assert decorated, "the grep found no kernels at all"
    names = set(report["module_names"])
    for path in decorated:
        text = path.read_text()
        # Closure-built modules, per scalar type and maybe dimension: meshsim_fem{dim}d_{scalar}.
        closure = re.findall(r'module = f"(\w+?)(\{dim\}d_)?\{scalar', text)
        for prefix, dims in closure:
            dims = ("2d_", "3d_") if dims else ("",)
            assert {f"{prefix}{d}{s}" for d in dims for s in ("float32", "float64")} <= names, path
        if not closure or re.search(r"^@wp\.kernel\b", text, re.M):  # top-level kernels: the file's own module
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            dotted = dotted.replace("kernels.", "meshsim.kernels.", 1) if dotted.startswith("kernels.") else dotted
            assert dotted in names, f"{dotted} has @wp.kernel but was not compiled"
    assert report["kernels"] >= sum(len(re.findall(r"^\s*@wp\.kernel\b", p.read_text(), re.M)) for p in decorated)


def test_an_unsupported_arch_is_refused_in_one_line():
    run = subprocess.run([sys.executable, str(TOOL), "--arch", "70"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert "sm_70 not supported" in run.stderr.strip().splitlines()[-1]
