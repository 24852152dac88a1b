"""Warp kernels exposed as torch ops (contact/radius search, fused edge attention, 3x3 polar decomposition).

- `radius_pairs(pos, radius, *, sender_mask, receiver_mask, exclude_edges, batch)`: all ordered pairs closer
  than `radius`, [2, P] (senders, receivers), sorted by receiver then sender.
- `contact_pairs(pos, radius, group_a, group_b, ...)`: pairs between two groups, both directions (HCMT contacts).
- `edge_attention(q, k, v, edge_bias, edge_gate, senders, receivers, num_nodes, mode, *, csr)`: fused graph
  attention (HCMT per-channel form or per-head softmax), forward and backward in Warp.
- `receiver_csr(senders, receivers, num_nodes)`: the receiver-sorted edge order, built once per graph.
- `polar_sigma(F)`: rotation R of the polar decomposition F = R S and singular values, [N,3,3] -> ([N,3,3], [N,3]),
  with a gradient that stays finite at repeated singular values; `svd_rotation(F)`: U, sigma, V with U and V
  proper rotations (no gradient). Used by the MPM materials (physics/) and the NCLaw networks (models/).
- `init_warp()`: the package's one quiet Warp initialisation (physics/ uses it too).

See docs/kernels.md. `reference` holds the composed-torch versions used as test oracles and baselines.
"""

from ._warp import init_warp
from .attention import edge_attention
from .csr import ReceiverCSR, receiver_csr
from .polar import polar_sigma, svd_rotation
from .radius import contact_pairs, radius_pairs

__all__ = [
    "ReceiverCSR", "contact_pairs", "edge_attention", "init_warp", "polar_sigma", "radius_pairs", "receiver_csr",
    "svd_rotation",
]
