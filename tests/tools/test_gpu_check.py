"""tools/gpu-check.sh without a GPU: one clear line, exit 3, nothing installed or written."""

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_fails_fast_in_one_line_without_a_gpu(tmp_path):
    fake = tmp_path / "bin" / "nvidia-smi"  # whatever this machine has, the script sees a driver with no GPU
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'No devices were found'\nexit 6\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "gpu.json"
    run = subprocess.run(["bash", str(ROOT / "tools" / "gpu-check.sh"), str(out)], capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}",
                              "GPU_VENV": str(tmp_path / "venv")}, timeout=30)
    assert run.returncode == 3
    assert run.stdout == "" and run.stderr.strip().splitlines() == [
        "gpu-check: no CUDA GPU on this machine (nvidia-smi finds none); run it where one is"]
    assert not out.exists() and not (tmp_path / "venv").exists()
