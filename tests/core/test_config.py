"""Typed configs: YAML + overrides, unknown keys, wrong types and range checks fail with one clear line."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from meshsim.config import apply_overrides, load_config, save_config, to_dict
from meshsim.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-4
    decay: float = 0.1

    def __post_init__(self):
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")


@dataclass
class Run:
    name: str = "demo"
    steps: int = 10
    kind: Literal["hcmt", "mgn"] = "hcmt"
    fields: tuple[str, ...] = ("stress",)
    radius: float | None = None
    optim: Optim = field(default_factory=Optim)


def test_defaults_yaml_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: x\noptim:\n  lr: 3.0e-4\nfields: [stress, velocity]\n")
    cfg = load_config(Run, path, ["steps=1e3", "optim.decay=0.5", "kind=mgn", "radius=0.4"])
    assert cfg.name == "x" and cfg.steps == 1000 and cfg.kind == "mgn"
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.optim.decay == 0.5
    assert cfg.fields == ("stress", "velocity") and cfg.radius == 0.4
    assert isinstance(cfg.optim.lr, float)


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config(Run, None, ["optim.lr=2e-3", "fields=[a]"])
    save_config(cfg, tmp_path / "resolved.yaml")
    again = load_config(Run, tmp_path / "resolved.yaml")
    assert again == cfg and to_dict(again)["fields"] == ["a"]


@pytest.mark.parametrize(
    "override, words",
    [
        ("stepz=3", ["unknown key 'stepz'", "steps"]),
        ("optim.beta=3", ["unknown key 'beta'", "config.optim"]),
        ("steps=abc", ["config.steps", "integer"]),
        ("steps=1.5", ["config.steps", "integer"]),
        ("optim.lr=true", ["config.optim.lr", "number"]),
        ("kind=gnn", ["config.kind", "'hcmt'"]),
        ("optim.lr=-1", ["optim.lr must be > 0"]),
        ("optim=3", ["config.optim", "mapping"]),
        ("optim.lr=nan", ["config.optim.lr", "finite"]),
        ("noequals", ["key=value"]),
        ("steps.x=1", ["'steps' is a value"]),
    ],
)
def test_bad_values_name_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        load_config(Run, None, [override] if override != "steps.x=1" else ["steps=1", "steps.x=1"])
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Run, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Run, bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Run, scalar)


def test_overrides_do_not_mutate_input():
    data = {"optim": {"lr": 1.0}}
    out = apply_overrides(data, ["optim.lr=2"])
    assert data["optim"]["lr"] == 1.0 and out["optim"]["lr"] == 2
