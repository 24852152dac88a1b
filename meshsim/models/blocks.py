"""Shared building blocks: MLPs, the MeshGraphNets GraphNet block and the HCMT transformer block."""

from __future__ import annotations

import torch
from torch import nn

from meshsim.graph.attention import edge_attention


class MLP(nn.Sequential):
    """Linear -> ReLU, `hidden_layers` times, then Linear to `out`; optional LayerNorm on the output."""

    def __init__(self, width_in: int, hidden: int, out: int, hidden_layers: int = 2, layer_norm: bool = True):
        layers: list[nn.Module] = []
        width = width_in
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, out))
        if layer_norm:
            layers.append(nn.LayerNorm(out))
        super().__init__(*layers)


def scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    out = torch.zeros((size,) + values.shape[1:], dtype=values.dtype, device=values.device)
    return out.index_add_(0, index, values)


class GraphNetBlock(nn.Module):
    """MeshGraphNets block: per edge set e += MLP([h_s, h_r, e]); h += MLP([h, sum_e(set 1), sum_e(set 2), ...]).

    The first layer of each edge MLP is split per input ("concat trick"): W [h_s, h_r, e] = (W_s h)[s] +
    (W_r h)[r] + W_e e, so the node parts are projected once per node instead of once per edge.
    """

    def __init__(self, latent: int, edge_sets: int, hidden_layers: int = 2):
        super().__init__()
        self.edge_mlps = nn.ModuleList(MLP(3 * latent, latent, latent, hidden_layers) for _ in range(edge_sets))
        self.node_mlp = MLP((1 + edge_sets) * latent, latent, latent, hidden_layers)

    def forward(self, h: torch.Tensor, edge_sets: list[tuple[torch.Tensor, torch.Tensor]]):
        n, latent = h.shape
        aggregates, new_edges = [h], []
        for mlp, (index, e) in zip(self.edge_mlps, edge_sets):
            first = mlp[0]
            w_s, w_r, w_e = first.weight.split(latent, dim=1)
            node_proj = h @ torch.cat([w_s, w_r]).T  # [N, 2 * hidden]
            hidden = node_proj[index[0], : w_s.shape[0]] + node_proj[index[1], w_s.shape[0] :]
            update = hidden + e @ w_e.T + first.bias
            for layer in list(mlp)[1:]:
                update = layer(update)
            new_edges.append(e + update)
            aggregates.append(scatter_sum(update, index[1], n))
        return h + self.node_mlp(torch.cat(aggregates, dim=-1)), new_edges


class FeedForward(nn.Sequential):
    """HCMT's FFN: three bias-free Linear layers of the latent width with ReLU between (no 4x expansion)."""

    def __init__(self, latent: int):
        super().__init__(
            nn.Linear(latent, latent, bias=False),
            nn.ReLU(),
            nn.Linear(latent, latent, bias=False),
            nn.ReLU(),
            nn.Linear(latent, latent, bias=False),
        )


class TransformerBlock(nn.Module):
    """Pre-LN graph transformer block of HCMT over one or more edge sets (HMT: 1, CMT: mesh + contact).

        V' = V + O_V(concat_sets Attn(LN(V), LN_set(E_set)));   V'' = V' + FFN(LN(V'))

    Q, K, V and the edge projections W_P (score bias) and W_G (value gate) are bias-free and shared across edge
    sets; each set has its own edge LayerNorm. Edge latents are read, never updated.
    """

    def __init__(self, latent: int, heads: int, edge_sets: int = 1, attention: str = "hcmt"):
        super().__init__()
        self.heads, self.attention = heads, attention
        self.norm_nodes = nn.LayerNorm(latent)
        self.norm_edges = nn.ModuleList(nn.LayerNorm(latent) for _ in range(edge_sets))
        self.qkv = nn.Linear(latent, 3 * latent, bias=False)  # W_Q, W_K, W_V stacked (one parameter)
        self.edge_proj = nn.Linear(latent, 2 * latent, bias=False)  # W_P, W_G stacked
        self.out = nn.Linear(edge_sets * latent, latent)
        self.norm_ffn = nn.LayerNorm(latent)
        self.ffn = FeedForward(latent)

    def forward(self, h: torch.Tensor, edge_sets: list[tuple]) -> torch.Tensor:
        """h [N, latent]; edge_sets: (edge_index [2, E], edge latents [E, latent], receiver CSR or None)."""
        n, latent = h.shape
        shape = (-1, self.heads, latent // self.heads)
        q, k, v = (t.view(shape) for t in _split_linear(self.qkv, self.norm_nodes(h), 3))
        attended = []
        for norm, (index, e, csr) in zip(self.norm_edges, edge_sets):
            bias, gate = (t.view(shape) for t in _split_linear(self.edge_proj, norm(e), 2))
            out = edge_attention(q, k, v, bias, gate, index[0], index[1], n, mode=self.attention, csr=csr)
            attended.append(out.reshape(n, latent))
        h = h + self.out(torch.cat(attended, dim=-1))
        return h + self.ffn(self.norm_ffn(h))


def _split_linear(linear: nn.Linear, x: torch.Tensor, parts: int) -> tuple[torch.Tensor, ...]:
    """`linear(x).chunk(parts, -1)` for a bias-free layer, with every part contiguous: one matmul per part.

    Chunks of one fused output are strided views that the attention kernels would copy (forward and backward);
    a broadcast batched matmul copies its input instead. Per-part matmuls copy nothing (-20% HCMT train step).
    """
    return tuple(x @ w.T for w in linear.weight.chunk(parts))
