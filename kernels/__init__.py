"""Warp kernels exposed as torch ops (contact/radius search, fused edge attention).

- `radius_pairs(pos, radius, *, sender_mask, receiver_mask, exclude_edges, batch)`: all ordered pairs closer
  than `radius`, [2, P] (senders, receivers), sorted by receiver then sender.
- `contact_pairs(pos, radius, group_a, group_b, ...)`: pairs between two groups, both directions (HCMT contacts).
- `edge_attention(q, k, v, edge_bias, edge_gate, senders, receivers, num_nodes, mode, *, csr)`: fused graph
  attention (HCMT per-channel form or per-head softmax), forward and backward in Warp.
- `receiver_csr(senders, receivers, num_nodes)`: the receiver-sorted edge order, built once per graph.
- `init_warp()`: the package's one quiet Warp initialisation (physics/ uses it too).

See docs/kernels.md. `reference` holds the composed-torch versions used as test oracles and baselines.
"""

from ._warp import init_warp
from .attention import edge_attention
from .csr import ReceiverCSR, receiver_csr
from .radius import contact_pairs, radius_pairs

__all__ = ["ReceiverCSR", "contact_pairs", "edge_attention", "init_warp", "radius_pairs", "receiver_csr"]
