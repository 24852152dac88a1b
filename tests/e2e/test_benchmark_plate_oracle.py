"""`benchmarks/plate_oracle.py --quick` runs to the end and prints its JSON last; its linear oracle beats constant
velocity on held-out frames and a shipped model is scored on the same target."""

import json
import math
import sys
from pathlib import Path

from procs import run

ROOT = Path(__file__).resolve().parents[2]


def test_plate_oracle_quick_prints_its_json(tmp_path):
    proc = run([sys.executable, str(ROOT / "benchmarks" / "plate_oracle.py"), "--quick", "--hops", "1,2",
                "--checkpoint", "hcmt-impact-plate-2d"], timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["benchmark"] == "plate_oracle" and out["quick"] and out["plate_nodes"] > 100
    one_hop, two_hops = out["oracle_rel_error"]["1_hops"], out["oracle_rel_error"]["2_hops"]
    assert 0 < one_hop["test"] < 1  # better than constant velocity on trajectories it was not fitted on
    assert two_hops["train"] < one_hop["train"]  # more features fit its own data closer
    model = out["model_rel_error"]["hcmt-impact-plate-2d"]
    assert model > 0 and math.isfinite(model)
