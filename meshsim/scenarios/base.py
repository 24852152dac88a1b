"""What a scenario is, the registry of scenarios, and how a scenario's config is resolved.

A scenario module in this package defines `SCENARIO = Scenario(name, config, simulate, description)`:
`config` is a dataclass whose defaults are the small size used by tests, with a `preset` field;
`simulate(cfg, seed) -> Trajectory` is deterministic in (cfg, seed). `preset=benchmark` loads the recipe
`data/<name>.yaml` (the published-benchmark size) under any other overrides.
"""

from __future__ import annotations

import importlib
import importlib.resources
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshsim.config import apply_overrides, did_you_mean, from_dict, read_yaml
from meshsim.errors import ConfigError

PRESETS = ("small", "benchmark")


@dataclass(frozen=True)
class Scenario:
    name: str
    config: type
    simulate: Callable[[Any, int], Any]
    description: str = ""

    def recipe_path(self) -> Path:
        """The benchmark-size recipe shipped in meshsim.data."""
        return Path(str(importlib.resources.files("meshsim.data").joinpath(f"{self.name}.yaml")))

    def make_config(self, overrides: Sequence[str] = (), path: str | Path | None = None):
        """Config from defaults, the preset recipe, an optional YAML file, then `key=value` overrides."""
        data = read_yaml(path) if path is not None else {}
        data = apply_overrides(data, overrides)
        preset = data.get("preset", "small")
        if preset not in PRESETS:
            raise ConfigError(f"{self.name}: unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
        if preset == "benchmark":
            recipe = self.recipe_path()
            if not recipe.is_file():
                raise ConfigError(f"{self.name}: benchmark recipe {recipe} is missing; reinstall meshsim")
            data = {**read_yaml(recipe), **data}
        return from_dict(self.config, data, where=f"{self.name} config")


def _scenario_modules():
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):  # this package's folder
        if not info.name.startswith("_") and info.name not in ("base", "generation"):
            yield info.name


def all_scenarios() -> dict[str, Scenario]:
    """Every scenario defined in meshsim.scenarios (modules with a `SCENARIO` or `SCENARIOS` attribute)."""
    found: dict[str, Scenario] = {}
    for name in sorted(_scenario_modules()):
        module = importlib.import_module(f"meshsim.scenarios.{name}")
        items = list(getattr(module, "SCENARIOS", ())) + ([module.SCENARIO] if hasattr(module, "SCENARIO") else [])
        for item in items:
            found[item.name] = item
    return found


def get_scenario(name: str) -> Scenario:
    scenarios = all_scenarios()
    if name not in scenarios:
        raise ConfigError(
            f"unknown scenario {name!r}{did_you_mean(name, scenarios)}; available: {', '.join(sorted(scenarios))}")
    return scenarios[name]
