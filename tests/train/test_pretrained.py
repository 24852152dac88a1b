"""Shipped pretrained models: each loads with weights_only, rolls a fresh trajectory out close to its recorded
figure, and is usable by name; unknown names fail in one line."""

from __future__ import annotations

import pytest

from meshsim.errors import CheckpointError
from meshsim.train.pretrained import check_model, registry, resolve_checkpoint

MODELS = registry()


def test_models_are_shipped_and_listed(capsys):
    from meshsim.cli import main

    assert {"hcmt-impact-plate-2d", "mgn-impact-plate-2d", "hcmt-deforming-plate-3d"} <= set(MODELS)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MODELS) and "hold" in out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shipped_model_reproduces_its_recorded_figure(name):
    entry = MODELS[name]
    got = check_model(name, entry["check"])
    recorded = entry["check"]["figures"]
    assert got["p_all"] == pytest.approx(recorded["p_all"], rel=0.05, abs=0.01)
    assert got["p_all_hold"] == pytest.approx(recorded["p_all_hold"], rel=1e-3)  # the same trajectory


def test_names_resolve_and_mistakes_are_one_line():
    assert resolve_checkpoint("hcmt-impact-plate-2d").is_file()
    with pytest.raises(CheckpointError, match="did you mean 'hcmt-impact-plate-2d'"):
        resolve_checkpoint("hcmt-impact-plate2d")
    with pytest.raises(CheckpointError, match="not found"):
        resolve_checkpoint("runs/missing/best.pt")
