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

    def forward(
        self,
        nodes: torch.Tensor,
        level_edges: list[torch.Tensor],
        level_edge_features: torch.Tensor,
        level_ids: list[torch.Tensor],
        contact_edges: torch.Tensor,
        contact_features: torch.Tensor,
    ) -> torch.Tensor:
        """nodes [N, w]; level_edges[i] [2, E_i] for levels 0..L; level_edge_features: all levels' mesh-edge
        features stacked in level order [sum E_i, w_e]; level_ids[i] [n_i] (index 0 unused: identity);
        contact_edges [2, C] with features [C, w_c]. Returns [N, out_width]."""
        h = self.node_encoder(nodes)
        latents = self.mesh_edge_encoder(level_edge_features).split([e.shape[1] for e in level_edges])
        # Receiver CSRs are built once per edge set and shared by every block that uses it (CMT, down, up).
        sizes = [nodes.shape[0]] + [ids.shape[0] for ids in level_ids[1:]]
        mesh = [(e, lat, receiver_csr(e[0], e[1], n)) for e, lat, n in zip(level_edges, latents, sizes)]
        contact = (contact_edges, self.contact_edge_encoder(contact_features),
                   receiver_csr(contact_edges[0], contact_edges[1], nodes.shape[0]))
        for block in self.cmt:
            h = block(h, [mesh[0], contact])
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, [mesh[i]])
            skips.append(h)
            h = h[level_ids[i + 1]]
        h = self.bottom(h, [mesh[self.levels]])
        for i in reversed(range(self.levels)):
            h = skips[i].index_copy(0, level_ids[i + 1], h)  # unpool: coarse rows overwrite the kept nodes
            h = self.up[i](h, [mesh[i]])
        return self.decoder(h)
