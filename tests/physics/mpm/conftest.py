"""Particles for the MPM solver tests."""

import numpy as np
import pytest

from meshsim.physics.mpm import sample_box


@pytest.fixture
def cube():
    """A 0.3 m cube of 10^3 particles at the centre, density 1000."""
    x = sample_box((0.5, 0.5, 0.5), 0.3, 0.03)
    vol = np.full(len(x), 0.03**3)
    return x, 1000.0 * vol, vol
