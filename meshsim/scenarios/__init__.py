"""Parametrised scenes that produce trajectories, and the generator that fills trajectory stores.

    from meshsim.scenarios import get_scenario, generate
    scenario = get_scenario("impact-plate-2d")
    cfg = scenario.make_config(["preset=benchmark", "num_frames=30"])
    traj = scenario.simulate(cfg, seed=0)                 # a meshsim.datasets.Trajectory
    generate("impact-plate-2d", num=10, out="impact.h5", workers=2)
"""

from meshsim.scenarios.base import Scenario, all_scenarios, get_scenario
from meshsim.scenarios.generation import generate, trajectory_seed

__all__ = ["Scenario", "all_scenarios", "generate", "get_scenario", "trajectory_seed"]
