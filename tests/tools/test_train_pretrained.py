"""tools/train_pretrained.sh's extension stages: the learning rate goes on continuously from stage to stage."""

import os
import re
import stat
from pathlib import Path

from procs import run

ROOT = Path(__file__).resolve().parents[2]


def _stages(tmp_path: Path, extend: str) -> list[tuple[float, float]]:
    """(cpu_limit_minutes, optim.lr or the recipe's 1e-3) of each `meshsim train` the script runs, in order."""
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "meshsim"  # records its arguments instead of training
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid", "test"):  # present, so nothing is generated
        (data / f"{split}.h5").touch()
    done = run(["bash", str(ROOT / "tools" / "train_pretrained.sh"), "impact", str(data), str(tmp_path / "runs")],
               timeout=60, env={**os.environ, "MESHSIM": str(fake), "MODELS": "hcmt", "CPU_MINUTES": "60",
                                "EXTEND_MINUTES": extend})
    assert done.returncode == 0, done.stderr
    stages = []
    for line in calls.read_text().splitlines():
        cpu = float(re.search(r"cpu_limit_minutes=(\S+)", line).group(1))
        lr = re.search(r"optim\.lr=(\S+)", line)
        stages.append((cpu, float(lr.group(1)) if lr else 1e-3))
    return stages


def test_each_stage_starts_at_the_rate_the_last_one_ended_with(tmp_path):
    stages = _stages(tmp_path, "90 120")
    assert [cpu for cpu, _ in stages] == [60, 90, 120]
    # the trainer's schedule over a stage to T minutes: optim.lr * 0.1^(t / T) for the run's whole CPU time t
    for (t_prev, lr_prev), (t_next, lr_next) in zip(stages, stages[1:]):
        assert abs(lr_next * 0.1 ** (t_prev / t_next) / (lr_prev * 0.1) - 1) < 1e-6
    assert abs(stages[1][1] - 1e-3 * 0.1 ** (1 - 60 / 90)) < 1e-12  # one stage: the formula the models shipped with
