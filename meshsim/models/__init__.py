"""Learned mesh simulators: HCMT and MeshGraphNets behind one LearnedSimulator (NCLaw lives in nclaw.py)."""

from meshsim.models.checkpoint import load_simulator
from meshsim.models.config import ModelConfig
from meshsim.models.hcmt import HCMT
from meshsim.models.mgn import MeshGraphNet
from meshsim.models.simulator import LearnedSimulator

__all__ = ["HCMT", "LearnedSimulator", "MeshGraphNet", "ModelConfig", "load_simulator"]
