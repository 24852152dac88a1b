"""ModelConfig: architecture, features and training-time choices of a learned mesh stepper (HCMT or MGN)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meshsim.datasets.schema import NodeType
from meshsim.errors import ConfigError

_NODE_TYPE_NAMES = tuple(t.name for t in NodeType if t is not NodeType.SIZE)


@dataclass
class ModelConfig:
    kind: Literal["hcmt", "mgn"] = "hcmt"
    latent: int = 128
    mlp_layers: int = 2  # hidden layers of encoder/decoder (and MGN processor) MLPs
    blocks: int = 15  # MGN processor blocks
    cmt_blocks: int = 2  # HCMT contact-mesh-transformer blocks
    levels: int = 6  # HCMT hierarchy depth: `levels` down blocks, 1 bottom, `levels` up blocks
    heads: int = 4
    attention: Literal["hcmt", "softmax"] = "hcmt"
    contact_radius: float = 0.03  # HCMT obstacle<->normal contacts / MGN world edges (world units)
    world_edges: bool = False  # MGN: world edges (all pairs within radius minus mesh edges) instead of contacts
    target: Literal["delta", "accel"] = "delta"
    fields: tuple[str, ...] = ("stress",)  # scalar per-node fields predicted at t+1
    material_keys: tuple[str, ...] = ("density", "youngs_modulus")
    noise_std: float = 0.003
    noise_gamma: float = 1.0
    # weight of a second position loss on the relative update of the two ends of every mesh edge of the deformable
    # body (the strain increment): the per-node loss barely sees the micrometre differences that make strain
    edge_loss_weight: float = 0.0
    # normalize the position target of OBSTACLE nodes with their own statistics: a rigid impactor's accelerations
    # are ~5x smaller than a vibrating plate's, so under shared statistics the per-node loss barely sees the errors
    # that a rollout integrates twice into the impactor's path
    target_norm_by_type: bool = False
    kinematic_input: bool = False  # add x_{t+1} - x_t of the nodes the model does not predict as input
    # carry the fields (stress) as state: their values at t are node inputs and the model predicts their change to
    # t+1. Without it the stress at t+1 must be read off strains of ~1e-3 that the position features do not resolve
    field_input: bool = False
    # add x_t - X (displacement from the reference mesh) of the deformable nodes as input: a clamped body's drift
    # away from its supports is invisible to edge features (they see only relative positions) except next to them
    displacement_input: bool = False
    predicted_types: tuple[str, ...] = ("NORMAL", "OBSTACLE")
    rigid_obstacles: bool = False  # rollout: project predicted OBSTACLE bodies onto their best rigid motion
    nonnegative_fields: tuple[str, ...] = ("stress",)  # fields clamped at >= 0 when predicted (von Mises is a norm)
    min_level_nodes: int = 5  # hierarchy: stop coarsening below this many nodes
    level_edge_factor: float = 2.0  # hierarchy: drop Delaunay edges longer than this x the median (MST kept)
    hierarchy_cache_dir: str = ""  # optional folder for cached hierarchies ("" = memory only)

    def __post_init__(self) -> None:
        for name in ("latent", "mlp_layers", "heads", "min_level_nodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("blocks", "cmt_blocks", "levels"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name} must be at least 0, got {getattr(self, name)}")
        if self.kind == "hcmt" and self.latent % self.heads:
            raise ConfigError(f"model.latent ({self.latent}) must be a multiple of model.heads ({self.heads})")
        if not self.contact_radius > 0:
            raise ConfigError(f"model.contact_radius must be positive, got {self.contact_radius}")
        if self.noise_std < 0 or not 0.0 <= self.noise_gamma <= 1.0:
            raise ConfigError("model.noise_std must be >= 0 and model.noise_gamma within [0, 1]")
        if not self.edge_loss_weight >= 0.0:
            raise ConfigError(f"model.edge_loss_weight must be >= 0, got {self.edge_loss_weight}")
        if not self.level_edge_factor >= 1.0:
            raise ConfigError(f"model.level_edge_factor must be >= 1, got {self.level_edge_factor}")
        self.fields = tuple(self.fields)
        if self.field_input and not self.fields:
            raise ConfigError("model.field_input needs model.fields: list the fields to carry, e.g. [stress]")
        self.material_keys = tuple(self.material_keys)
        self.predicted_types = tuple(self.predicted_types)
        self.nonnegative_fields = tuple(self.nonnegative_fields)
        for name in self.predicted_types:
            if name not in _NODE_TYPE_NAMES:
                raise ConfigError(
                    f"model.predicted_types: unknown node type {name!r}; use names from {', '.join(_NODE_TYPE_NAMES)}"
                )
        if "HANDLE" in self.predicted_types:
            raise ConfigError("model.predicted_types must not contain HANDLE: clamped nodes are never predicted")
        if not self.predicted_types:
            raise ConfigError("model.predicted_types is empty: list the node types the model predicts, e.g. [NORMAL]")

    @property
    def predicted_type_ids(self) -> tuple[int, ...]:
        return tuple(int(NodeType[name]) for name in self.predicted_types)
