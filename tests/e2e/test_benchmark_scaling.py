"""`benchmarks/scaling.py --quick` runs to the end and prints its JSON last (no times asserted: they are the
benchmark's business)."""

import json
import math
import sys
from pathlib import Path

import pytest
from procs import run

ROOT = Path(__file__).resolve().parents[2]


def test_scaling_quick_prints_its_json(tmp_path):
    plot = tmp_path / "scaling.png"
    proc = run([sys.executable, str(ROOT / "benchmarks" / "scaling.py"), "--quick", "--plot", str(plot)],
               timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["benchmark"] == "scaling" and out["quick"] and out["torch_threads"] == 1
    assert len(out["load_average_before"]) == 3 and "weights" in out["note"]
    assert plot.stat().st_size > 0
    for name in ("impact-plate-2d", "deforming-plate-3d"):
        res = out["scenarios"][name]
        assert "random" in out["models"][name]["weights"]
        sizes = res["sizes"]
        assert len(sizes) == 2 and sizes[0]["nodes"] < sizes[1]["nodes"]
        assert sizes[0]["substeps"] < sizes[1]["substeps"]  # finer elements, smaller CFL step
        for row in sizes:
            for key in ("solver_frame_s", "learned_b1_frame_s", "learned_b8_frame_s", "solver_over_learned_b1",
                        "solver_over_learned_b8", "solver_peak_rss_mib", "learned_b8_peak_rss_mib"):
                assert row[key] > 0 and math.isfinite(row[key]), key
        for key in ("solver_frame_s", "substeps", "learned_b1_frame_s", "learned_b8_frame_s"):
            assert math.isfinite(res["fits"][key]["exponent"])
        assert "crossover_nodes_b1" in res and "nodes_for_ratio_20_b1" in res
        key = name.replace("-", "_")
        assert out[f"{key}_solver_exponent"] == res["fits"]["solver_frame_s"]["exponent"]


def test_crossover_of_nearly_parallel_fits_is_none_not_an_overflow():
    """Noisy timings on a loaded machine gave two fits 1e-5 apart in slope: the crossing lies beyond any float."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from scaling import crossover

    solver = {"exponent": 1.2, "coefficient": 1e-5}
    assert crossover(solver, {"exponent": 1.0, "coefficient": 1e-4}) == pytest.approx(1e5)
    assert crossover(solver, {"exponent": 1.2 - 1e-5, "coefficient": 1e-4}) is None
    assert crossover(solver, {"exponent": 1.2, "coefficient": 1e-4}) is None
