"""HCMT (Yu et al., ICLR 2024): contact mesh transformer blocks, then a hierarchical mesh transformer U-Net.

    encode -> cmt_blocks x CMT(mesh + contact edges, full mesh)
           -> for level i < L: down_i on level i, keep h_i, pool h = h_i[ids_{i+1}]
           -> bottom on level L
           -> for level i = L-1 .. 0: unpool h = h_i with rows ids_{i+1} overwritten by h, then up_i on level i
           -> decode

Every level's edges are encoded once by the same mesh-edge encoder and reused by its down and up blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from meshsim.graph.attention import receiver_csr
from meshsim.graph.multigraph import MultiGraph
from meshsim.models.blocks import MLP, TransformerBlock


class HCMT(nn.Module):
    @classmethod
    def from_config(cls, cfg, node_width: int, mesh_edge_width: int, contact_edge_width: int, out_width: int):
        """The network a `ModelConfig` (kind hcmt) describes, for inputs and outputs of these widths."""
        return cls(node_width, mesh_edge_width, contact_edge_width, out_width, latent=cfg.latent, heads=cfg.heads,
                   cmt_blocks=cfg.cmt_blocks, levels=cfg.levels, mlp_layers=cfg.mlp_layers, attention=cfg.attention)

    def __init__(self, node_width: int, mesh_edge_width: int, contact_edge_width: int, out_width: int,
                 latent: int = 128, heads: int = 4, cmt_blocks: int = 2, levels: int = 6, mlp_layers: int = 2,
                 attention: str = "hcmt"):
        super().__init__()
        self.levels = levels
        self.node_encoder = MLP(node_width, latent, latent, mlp_layers)
        self.mesh_edge_encoder = MLP(mesh_edge_width, latent, latent, mlp_layers)
        self.contact_edge_encoder = MLP(contact_edge_width, latent, latent, mlp_layers)
        self.cmt = nn.ModuleList(TransformerBlock(latent, heads, 2, attention) for _ in range(cmt_blocks))
        self.down = nn.ModuleList(TransformerBlock(latent, heads, 1, attention) for _ in range(levels))
        self.bottom = TransformerBlock(latent, heads, 1, attention)
        self.up = nn.ModuleList(TransformerBlock(latent, heads, 1, attention) for _ in range(levels))
        self.decoder = MLP(latent, latent, out_width, mlp_layers, layer_norm=False)

    def forward(self, graph: MultiGraph) -> torch.Tensor:
        """Edge sets "mesh", "mesh_1" ... "mesh_L" (levels 0..L, with `graph.level_ids`) and "contact";
        returns [N, out_width]."""
        n = graph.nodes.shape[0]
        h = self.node_encoder(graph.nodes)
        levels = [graph.edge_set("mesh")] + [graph.edge_set(f"mesh_{i}") for i in range(1, self.levels + 1)]
        level_ids = graph.level_ids
        # one encoder call for every level's mesh edges (they share the encoder)
        latents = self.mesh_edge_encoder(torch.cat([s.features for s in levels])).split(
            [s.index.shape[1] for s in levels])
        # Receiver CSRs are built once per edge set and shared by every block that uses it (CMT, down, up).
        sizes = [n] + [ids.shape[0] for ids in level_ids]
        mesh = [(s.index, lat, receiver_csr(s.index[0], s.index[1], size))
                for s, lat, size in zip(levels, latents, sizes)]
        contact_set = graph.edge_set("contact")
        contact = (contact_set.index, self.contact_edge_encoder(contact_set.features),
                   receiver_csr(contact_set.index[0], contact_set.index[1], n))
        for block in self.cmt:
            h = block(h, [mesh[0], contact])
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, [mesh[i]])
            skips.append(h)
            h = h[level_ids[i]]
        h = self.bottom(h, [mesh[self.levels]])
        for i in reversed(range(self.levels)):
            h = skips[i].index_copy(0, level_ids[i], h)  # unpool: coarse rows overwrite the kept nodes
            h = self.up[i](h, [mesh[i]])
        return self.decoder(h)
