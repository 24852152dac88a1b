"""`meshsim eval` figures beside their trivial baselines: hold still, constant velocity, skill, node types, phases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from meshsim.datasets import Trajectory
from meshsim.datasets.schema import NodeType
from meshsim.metrics import (
    contact_phases,
    element_volume_ratios,
    evaluate_trajectory,
    format_table,
    trivial_predictions,
)


def impact(frames=10):
    """A 1 x 2 row of plate nodes hit by a one-node 'ball' that falls, touches at frames 4-5 and flies back."""
    plate = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])
    cells = np.array([[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4], [6, 6, 6]])
    ball_y = np.array([3.0, 2.5, 2.0, 1.5, 1.2, 1.2, 1.5, 2.0, 2.5, 3.0])[:frames]
    world = np.zeros((frames, 7, 2))
    world[:, :6] = plate
    world[:, 4, 1] = 1.0 - 0.1 * np.sin(np.arange(frames))  # the hit node vibrates
    world[:, 6] = np.stack([np.full(frames, 1.0), ball_y], 1)
    node_type = np.array([NodeType.HANDLE, 0, 0, NodeType.HANDLE, 0, 0, NodeType.OBSTACLE], np.int32)
    stress = np.abs(np.sin(np.arange(frames)))[:, None] * np.ones((frames, 7))
    return Trajectory(cells=cells.astype(np.int32), mesh_pos=world[0].astype(np.float32), node_type=node_type,
                      world_pos=world.astype(np.float32), dt=0.1, fields={"stress": stress.astype(np.float32)},
                      attrs={"rollout_history_frames": 2})


def test_perfect_and_held_predictions_score_skill_one_and_zero():
    truth = impact()
    perfect = evaluate_trajectory(dataclasses.replace(truth, pred_world_pos=truth.world_pos,
                                                      pred_fields=dict(truth.fields))).summary()
    assert perfect["p_all"] == 0 and perfect["skill"] == 1 and perfect["NORMAL_skill"] == 1
    assert perfect["p_all_hold"] > 0 and perfect["p_all_cv"] > 0 and perfect["s_skill"] == 1
    hold = trivial_predictions(truth.world_pos)["hold"]
    held_stress = np.broadcast_to(truth.fields["stress"][1], truth.fields["stress"].shape)
    held = evaluate_trajectory(dataclasses.replace(truth, pred_world_pos=hold,
                                                   pred_fields={"stress": held_stress})).summary()
    assert held["skill"] == pytest.approx(0) and held["NORMAL_skill"] == pytest.approx(0)
    assert held["s_skill"] == pytest.approx(0)
    assert held["OBSTACLE_p_all"] == pytest.approx(held["OBSTACLE_p_all_hold"])
    assert "HANDLE_p_all" not in held  # clamped nodes are never predicted: no column of their own
    table = format_table({"trajectories": {"t": held}, "mean": held})
    assert "hold" in table and "skill" in table and "NORMAL" in table


def test_constant_velocity_baseline_extrapolates_the_last_input_velocity():
    x = np.cumsum(np.ones((6, 2, 2)), axis=0)  # every node moves by (1, 1) per frame
    cv = trivial_predictions(x)["cv"]
    np.testing.assert_allclose(cv, x)  # exact for uniform motion
    np.testing.assert_allclose(trivial_predictions(x)["hold"][2:], np.broadcast_to(x[1], (4, 2, 2)))


def test_contact_phases_split_the_rollout_steps():
    touching = np.array([False, False, False, False, True, True, False, False])
    np.testing.assert_array_equal(contact_phases(touching), [0, 0, 1, 1, 2, 2])
    summary = evaluate_trajectory(dataclasses.replace(impact(), pred_world_pos=impact().world_pos)).summary()
    assert summary["p_before"] == 0 and summary["p_during_hold"] > 0 and summary["p_after_hold"] > 0


def test_element_volume_ratio_is_det_f_in_2d_and_3d():
    tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    turn = np.array([[0.0, -1.0], [1.0, 0.0]])
    frames = np.stack([tri, 2.0 * tri, tri @ turn.T + 5.0, tri * [3.0, 1.0]])
    np.testing.assert_allclose(element_volume_ratios(frames, tri, np.array([[0, 1, 2]]))[:, 0], [1, 4, 1, 3])
    tet = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    ratios = element_volume_ratios(np.stack([tet, 2.0 * tet]), tet, np.array([[0, 1, 2, 3], [0, 2, 1, 3]]))
    np.testing.assert_allclose(ratios, [[1, 1], [8, 8]])  # either orientation: a ratio of signed volumes


def test_volume_error_sees_a_jittered_mesh_that_positions_forgive():
    truth = impact()
    perfect = evaluate_trajectory(dataclasses.replace(truth, pred_world_pos=truth.world_pos)).summary()
    assert perfect["j_all"] == 0 and perfect["j_skill"] == 1 and perfect["j_all_hold"] > 0
    # the whole plate moved rigidly by 0.3 (positions off) against one node moved by 0.1 (mesh distorted)
    shifted, jittered = truth.world_pos.copy(), truth.world_pos.copy()
    shifted[2:, :6] += 0.3
    jittered[2:, 1, 0] += 0.1
    a = evaluate_trajectory(dataclasses.replace(truth, pred_world_pos=shifted)).summary()
    b = evaluate_trajectory(dataclasses.replace(truth, pred_world_pos=jittered)).summary()
    assert a["p_all"] > b["p_all"] and a["j_all"] == pytest.approx(0.0, abs=1e-4)
    assert b["j_all"] > 0 and b["j_all"] > a["j_all"]
    # the ball's degenerate cell (an OBSTACLE element) is left out instead of dividing by its zero area
    assert np.isfinite(b["j_all"]) and np.isfinite(b["j_all_hold"])
    table = format_table({"trajectories": {"t": b}, "mean": b})
    assert "J-err %" in table and "J-hold" in table
