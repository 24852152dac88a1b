"""Receiver-sorted edge order (CSR), built once per graph and reused by every attention layer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from ._warp import launch, warp_array
from .attention_kernels import Csr, Edges, csr_count, csr_scatter


@dataclass(frozen=True)
class ReceiverCSR:
    """Edges grouped by receiver: the edges into node r are `edge_ids[row_ptr[r]:row_ptr[r+1]]`.

    Within a receiver the edges keep their input order (stable sort). Tensors are int32 on the graph's device.
    """

    row_ptr: torch.Tensor  # [N + 1]
    edge_ids: torch.Tensor  # [E] edge index of each CSR slot
    senders: torch.Tensor  # [E] sender of each CSR slot
    num_nodes: int
    num_edges: int
    max_sender: int  # largest sender index (-1 without edges): rows of k, v the edges need

    def kernel_view(self, first: int) -> Csr:
        """The `Csr` struct the attention kernels read, for a launch whose receivers start at `first`."""
        view = Csr()
        view.row_ptr, view.edge_ids, view.senders = self._warp_arrays
        view.first = first
        return view

    @cached_property
    def _warp_arrays(self) -> tuple:  # wrapped once per graph: every layer's forward and backward reuse them
        return tuple(warp_array(x) for x in (self.row_ptr, self.edge_ids, self.senders))


def receiver_csr(senders: torch.Tensor, receivers: torch.Tensor, num_nodes: int) -> ReceiverCSR:
    """Group edges s -> r by receiver (a stable sort; skipped when `receivers` is already sorted)."""
    if senders.dim() != 1 or receivers.shape != senders.shape:
        raise ValueError(f"senders and receivers must be [E] tensors of one shape, got {tuple(senders.shape)} "
                         f"and {tuple(receivers.shape)}")
    if senders.is_floating_point() or receivers.is_floating_point():
        raise TypeError("senders and receivers must be integer tensors")
    num_edges = senders.shape[0]
    if num_nodes < 0 or num_nodes >= 2**31 or num_edges >= 2**31:
        raise ValueError(f"graphs need 0 <= num_nodes < 2^31 and fewer than 2^31 edges, got {num_nodes}, {num_edges}")
    device = senders.device
    senders, receivers = senders.long().contiguous(), receivers.long().contiguous()
    row_ptr = torch.zeros(num_nodes + 1, dtype=torch.int32, device=device)
    if num_edges == 0:
        empty = torch.zeros(0, dtype=torch.int32, device=device)
        return ReceiverCSR(row_ptr, empty, empty, int(num_nodes), 0, -1)
    if device.type == "cpu":  # one serial pass: cheaper than torch's threaded reductions
        edges = Edges()
        edges.senders, edges.receivers = warp_array(senders), warp_array(receivers)
        stats = torch.empty(5, dtype=torch.int64)
        launch(csr_count, 1, [edges, row_ptr, stats], device)
        min_s, max_s, min_r, max_r, is_sorted = stats.tolist()
    else:
        min_s, max_s, min_r, max_r = (int(x) for x in (senders.min(), senders.max(), receivers.min(), receivers.max()))
        is_sorted = bool((receivers[1:] >= receivers[:-1]).all())
        row_ptr[1:] = torch.cumsum(torch.bincount(receivers, minlength=num_nodes), 0)
    if min_r < 0 or max_r >= num_nodes:
        raise ValueError(f"receivers must lie in [0, num_nodes = {num_nodes})")
    if min_s < 0 or max_s >= 2**31:
        raise ValueError("senders must be node indices in [0, 2^31)")
    if is_sorted:
        edge_ids = torch.arange(num_edges, dtype=torch.int32, device=device)
        csr_senders = senders.to(torch.int32)
    elif device.type == "cuda":
        order = torch.argsort(receivers, stable=True)
        edge_ids, csr_senders = order.to(torch.int32), senders[order].to(torch.int32)
    else:  # a serial counting sort: O(E), several times faster than a comparison sort on the CPU
        edge_ids, csr_senders = (torch.empty(num_edges, dtype=torch.int32) for _ in range(2))
        csr = ReceiverCSR(row_ptr, edge_ids, csr_senders, int(num_nodes), int(num_edges), int(max_s))
        launch(csr_scatter, 1, [edges, row_ptr[:-1].clone(), csr.kernel_view(0)], device)  # writes both
        return csr
    return ReceiverCSR(row_ptr, edge_ids, csr_senders.contiguous(), int(num_nodes), int(num_edges), int(max_s))
