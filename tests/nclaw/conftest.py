import numpy as np
import pytest
import torch

from meshsim.physics.mpm import sample_box


@pytest.fixture
def cube():
    """A 0.3 m cube of 10^3 particles at the centre, density 1000."""
    x = sample_box((0.5, 0.5, 0.5), 0.3, 0.03)
    vol = np.full(len(x), 0.03**3)
    return x, 1000.0 * vol, vol


@pytest.fixture
def rotations():
    """rotations(n, seed) -> [n, 3, 3] float64 random proper rotations."""
    return random_rotations


def random_rotations(n, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=g, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    return q * torch.det(q)[:, None, None]
