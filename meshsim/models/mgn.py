"""MeshGraphNets (Pfaff et al. 2021): encode -> `blocks` GraphNet blocks with residuals -> decode."""

from __future__ import annotations

import torch
from torch import nn

from meshsim.graph.multigraph import MultiGraph
from meshsim.models.blocks import MLP, GraphNetBlock


class MeshGraphNet(nn.Module):
    """Encode nodes and each edge set, process with `blocks` GraphNet blocks, decode nodes (no LayerNorm).

    `edge_widths` lists the raw feature width of each edge set (e.g. mesh, then contact or world edges); the
    node update concatenates one sum per edge set, as in DeepMind's implementation.
    """

    @classmethod
    def from_config(cls, cfg, node_width: int, edge_widths: list[int], out_width: int):
        """The network a `ModelConfig` (kind mgn) describes, for inputs and outputs of these widths."""
        return cls(node_width, edge_widths, out_width, latent=cfg.latent, blocks=cfg.blocks, mlp_layers=cfg.mlp_layers)

    def __init__(self, node_width: int, edge_widths: list[int], out_width: int, latent: int = 128,
                 blocks: int = 15, mlp_layers: int = 2):
        super().__init__()
        self.node_encoder = MLP(node_width, latent, latent, mlp_layers)
        self.edge_encoders = nn.ModuleList(MLP(w, latent, latent, mlp_layers) for w in edge_widths)
        self.processor = nn.ModuleList(GraphNetBlock(latent, len(edge_widths), mlp_layers) for _ in range(blocks))
        self.decoder = MLP(latent, latent, out_width, mlp_layers, layer_norm=False)

    def forward(self, graph: MultiGraph) -> torch.Tensor:
        """Its edge sets in the order of the encoders ("mesh", then "world" or "contact") -> [N, out_width]."""
        h = self.node_encoder(graph.nodes)
        indices = [s.index for s in graph.edge_sets]
        latents = [enc(s.features) for enc, s in zip(self.edge_encoders, graph.edge_sets)]
        for block in self.processor:
            h, latents = block(h, list(zip(indices, latents)))
        return self.decoder(h)
