"""meshsim.study: sweep values become scene overrides that the scene's config accepts."""

import numpy as np
import pytest

from meshsim.errors import ConfigError
from meshsim.scenarios import get_scenario
from meshsim.study import _override


@pytest.mark.parametrize("value", [4.0, np.float64(4.0), np.float32(4.0), 4, np.int64(4)])
def test_sweep_values_of_any_numeric_type_become_plain_overrides(value):
    scenario = get_scenario("impact-plate-2d")
    base = scenario.make_config([])
    override = _override(base, "ball_speed", value)
    assert "np." not in override
    assert scenario.make_config([override]).ball_speed == (4.0, 4.0)  # a sampled range fixed at the value


def test_unknown_sweep_parameter_names_the_choices():
    base = get_scenario("impact-plate-2d").make_config([])
    with pytest.raises(ConfigError, match="no parameter 'ball_sped'.*ball_speed"):
        _override(base, "ball_sped", 4.0)
