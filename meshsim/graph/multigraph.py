"""The input of HCMT and MeshGraphNets: node features and typed edge sets (DeepMind's EdgeSet/MultiGraph idea).

    MultiGraph(nodes, [EdgeSet("mesh", index, features), EdgeSet("contact", index, features)])

Names: "mesh" (the mesh edges), "contact" (HCMT's obstacle <-> body pairs) or "world" (MGN's world edges), and
for HCMT's hierarchy "mesh_1" ... "mesh_L" with `level_ids[i - 1]`: the nodes of level i - 1 kept at level i.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class EdgeSet:
    name: str
    index: torch.Tensor  # [2, E] int64: senders, receivers
    features: torch.Tensor  # [E, w], normalized


@dataclass
class MultiGraph:
    nodes: torch.Tensor  # [N, w], normalized
    edge_sets: list[EdgeSet]
    level_ids: list[torch.Tensor] = field(default_factory=list)  # HCMT: [n_i] ids into level i - 1, i = 1..L

    def edge_set(self, name: str) -> EdgeSet:
        for edge_set in self.edge_sets:
            if edge_set.name == name:
                return edge_set
        raise KeyError(f"no edge set {name!r} in this graph (it has {[s.name for s in self.edge_sets]})")
