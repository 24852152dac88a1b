"""meshsim.threads: thread choice (explicit, automatic, refused), the collapse warning, and `--threads` checked by
every command that computes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from meshsim.errors import ConfigError
from meshsim.threads import SMALL_GRAPH_NODES, ThroughputWatch, choose_threads

_spec = importlib.util.spec_from_file_location("_train_test", Path(__file__).parents[1] / "train" / "test_train.py")
_train_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_test)


def test_threads_explicit_automatic_and_refused(monkeypatch):
    assert choose_threads(3) == 3
    assert choose_threads(0, nodes=SMALL_GRAPH_NODES - 1) == 1  # small graphs: one thread holds its speed
    monkeypatch.setattr("os.getloadavg", lambda: (1.2, 0.0, 0.0))
    monkeypatch.setattr("meshsim.threads.available_cores", lambda: 4)
    assert choose_threads(0, nodes=10**6) == 3  # 4 cores, one taken by another process
    assert choose_threads(0, nodes=10**6, processes=2) == 1
    monkeypatch.setattr("os.getloadavg", lambda: (9.0, 0.0, 0.0))
    assert choose_threads(0, nodes=10**6) == 1  # never below one
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="threads must be an integer"):
            choose_threads(bad)


def test_throughput_watch_warns_once_when_steps_slow_down(capsys):
    watch = ThroughputWatch(window=4, factor=3.0)
    messages = [watch.add(t) for t in [0.1] * 8 + [0.12] * 4 + [0.5] * 4 + [0.6] * 8]
    warnings = [m for m in messages if m]
    assert len(warnings) == 1 and "slowed 5.0x" in warnings[0] and "free the cores" in warnings[0]
    assert capsys.readouterr().err.count("warning: training slowed") == 1


def test_threads_flag_is_validated_on_every_command_that_computes(tmp_path, capsys):
    from meshsim.cli import main

    data = _train_test.synthetic_store(tmp_path / "d.h5", num=1, frames=5)
    (tmp_path / "c.yaml").write_text(f"train_data: [{data}]\nsteps: 2\n")
    for argv in (["train", str(tmp_path / "c.yaml"), "--threads", "-1", "--run-dir", str(tmp_path / "r")],
                 ["rollout", "hcmt-impact-plate-2d", str(data), "-o", str(tmp_path / "o.h5"), "--threads", "-2"],
                 ["study", "hcmt-impact-plate-2d", "impact-plate-2d", "--sweep", "ball_speed=5", "--threads", "-3",
                  "--out", str(tmp_path / "s")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "threads" in err[0], err
    assert not (tmp_path / "r").exists() and not (tmp_path / "o.h5").exists()
