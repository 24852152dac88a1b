"""`meshsim generate` / `meshsim.scenarios.generate`: parallel, resumable, deterministic, sharded."""

import numpy as np
import pytest

from meshsim.cli import main
from meshsim.datasets import TrajectoryFile
from meshsim.errors import ConfigError, OutputError
from meshsim.scenarios import generate

TINY = ["num_frames=4", "cells_x=8", "cells_y=2", "ball_rings=2", "duration=2e-3"]


@pytest.fixture(scope="module", autouse=True)
def compiled_kernels():
    """Compile (or load) the FEM kernels once here, so spawned workers find them in the cache (cold CI)."""
    from meshsim.scenarios import get_scenario

    scenario = get_scenario("impact-plate-2d")
    scenario.simulate(scenario.make_config(TINY), 0)


def _read_all(path):
    with TrajectoryFile(path) as f:
        return {i: f.read(i) for i in f.ids}


def _same(a, b):
    assert sorted(a) == sorted(b)
    for i in a:
        assert np.array_equal(a[i].world_pos, b[i].world_pos)
        assert np.array_equal(a[i].fields["stress"], b[i].fields["stress"])
        assert a[i].attrs == b[i].attrs


def test_cli_parallel_run_equals_interrupted_and_resumed_run(tmp_path, capsys):
    full = tmp_path / "datasets" / "impact" / "full.h5"  # as the tutorial writes it: the folders are created
    assert main(["generate", "impact-plate-2d", "--num", "4", "--out", str(full), "--workers", "2",
                 "--seed", "7", *TINY]) == 0
    assert "wrote 4 trajectories" in capsys.readouterr().out
    part = tmp_path / "part.h5"
    generate("impact-plate-2d", num=2, out=part, seed=7, overrides=TINY)  # "interrupted" after two
    summary = generate("impact-plate-2d", num=4, out=part, seed=7, overrides=TINY)
    assert summary["written"] == 2 and summary["skipped"] == 2
    _same(_read_all(full), _read_all(part))


def test_shards_partition_the_ids_and_match_a_single_run(tmp_path):
    whole = tmp_path / "whole.h5"
    generate("impact-plate-2d", num=3, out=whole, seed=1, overrides=TINY)
    s0, s1 = tmp_path / "s0.h5", tmp_path / "s1.h5"
    generate("impact-plate-2d", num=3, out=s0, seed=1, shard="0/2", overrides=TINY)
    generate("impact-plate-2d", num=3, out=s1, seed=1, shard="1/2", overrides=TINY)
    a, b = _read_all(s0), _read_all(s1)
    assert sorted(a) == ["00000", "00002"] and sorted(b) == ["00001"]
    _same(_read_all(whole), {**a, **b})


def test_torchrun_ranks_write_their_own_shard_files(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    summary = generate("impact-plate-2d", num=3, out=tmp_path / "d.h5", overrides=TINY)
    assert summary["out"].endswith("d.rank1of2.h5")
    assert sorted(_read_all(summary["out"])) == ["00001"]


def test_resuming_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "a.h5"
    generate("impact-plate-2d", num=1, out=out, seed=0, overrides=TINY)
    with pytest.raises(OutputError, match="another seed"):
        generate("impact-plate-2d", num=2, out=out, seed=1, overrides=TINY)
    with pytest.raises(OutputError, match="another config"):
        generate("impact-plate-2d", num=2, out=out, seed=0, overrides=[*TINY, "friction=0.5"])


@pytest.mark.parametrize("args,message", [
    (["generate", "no-such-scene", "--out", "X"], "unknown scenario"),
    (["generate", "impact-plate-2d", "--out", "X", "--num", "0"], "--num"),
    (["generate", "impact-plate-2d", "--out", "X", "--shard", "3/2"], "shard"),
    (["generate", "impact-plate-2d", "--out", "X", "bogus=1"], "unknown key"),
    (["generate", "impact-plate-2d", "--out", "afile/x.h5"], "afile"),
    (["generate", "impact-plate-2d"], "--out"),
])
def test_cli_errors_exit_2_with_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")  # a file where a folder should be
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_lists_scenarios(capsys):
    assert main(["generate", "--list"]) == 0
    assert "impact-plate-2d" in capsys.readouterr().out


def test_library_validates_num_and_workers(tmp_path):
    with pytest.raises(ConfigError):
        generate("impact-plate-2d", num=1, out=tmp_path / "a.h5", workers=0)
