"""The same kernels on CUDA (only where a GPU is present): results match the CPU run."""

import numpy as np
import pytest
import torch

from meshsim.mesh import rectangle
from meshsim.physics.fem import FemSolver
from meshsim.physics.fem_model import FemModel
from meshsim.physics.obstacles import RigidBody

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_cuda_matches_cpu():
    mesh = rectangle((0.3, 0.05), (12, 2))
    fixed = np.isclose(mesh.points[:, 0], 0.0)
    runs = []
    for device in ("cpu", "cuda:0"):
        ball = RigidBody("sphere", (0.2, 0.08), radius=0.03, velocity=(0.0, -1.0), mass=0.2, stiffness=4e6,
                         friction=0.2)
        model = FemModel.build(mesh.points, mesh.cells, density=1000.0, youngs_modulus=1e6, poisson_ratio=0.3,
                               fixed=fixed, obstacles=[ball], dtype="float64", device=device)
        solver = FemSolver(model)
        runs.append(solver.simulate(11, 2e-3))
    assert np.allclose(runs[0].positions, runs[1].positions, rtol=1e-6, atol=1e-9)
    assert np.allclose(runs[0].body_position, runs[1].body_position, rtol=1e-6, atol=1e-9)
