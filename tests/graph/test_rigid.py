"""meshsim.graph.rigid: rigid obstacle groups and the projection of a predicted body back onto a rigid motion."""

from __future__ import annotations

import math

import numpy as np
import torch

from meshsim.graph.rigid import project_rigid, rigid_groups


def test_rigid_projection_restores_a_rotated_body_and_leaves_others_alone():
    rng = np.random.default_rng(0)
    reference = torch.as_tensor(rng.normal(size=(12, 2)))
    angle = 0.4
    rot = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=torch.float64)
    placed = reference @ rot.T + torch.tensor([0.5, -1.0], dtype=torch.float64)
    edges = torch.tensor([[0, 1, 2, 3, 4, 6, 7, 8], [1, 2, 3, 4, 5, 7, 8, 9]])
    members = torch.zeros(12, dtype=torch.bool)
    members[:10] = True
    groups = rigid_groups(edges, members)
    assert groups.tolist() == [0] * 6 + [1] * 4 + [-1, -1]  # two bodies; nodes 10, 11 belong to neither
    noisy = placed + 1e-3 * torch.as_tensor(rng.normal(size=(12, 2)))
    out = project_rigid(noisy, reference, groups)
    assert torch.equal(out[10:], noisy[10:])
    for body in (slice(0, 6), slice(6, 10)):  # the shape is exact: pairwise distances of the reference
        assert torch.allclose(torch.cdist(out[body], out[body]), torch.cdist(reference[body], reference[body]))
    assert (out[:10] - placed[:10]).abs().max() < 3e-3  # and it sits where the noisy prediction put it
    mirrored = placed.clone()
    mirrored[:6, 0] *= -1  # a reflection is not a rigid motion: the result must still be a rotation
    fixed = project_rigid(mirrored, reference, groups)
    a, b = fixed[1] - fixed[0], fixed[2] - fixed[0]
    ra, rb = reference[1] - reference[0], reference[2] - reference[0]
    assert torch.sign(a[0] * b[1] - a[1] * b[0]) == torch.sign(ra[0] * rb[1] - ra[1] * rb[0])
