"""GraphBuilder: dataset samples and meshes -> the graphs a learned simulator runs on (no network, no weights).

    builder = GraphBuilder(model_cfg, dim=2)
    batch = builder.collate(samples)          # FrameWindowDataset items -> one PyG Batch (a DataLoader collate_fn)
    static = builder.prepare(mesh_pos, cells, node_type, attrs)   # one mesh, for rollouts

What it builds is everything that does not depend on the weights: mesh edges and (HCMT) hierarchy levels, cached
per mesh; material features; rigid body ids of predicted obstacles; and, for training windows, the frames and
fields. It runs on the CPU from host arrays, so a DataLoader can run it in worker processes; the trainer moves the
batch to the device afterwards. `cfg` is the model's config (`meshsim.models.ModelConfig`, read by attribute).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch

from meshsim.datasets.schema import NodeType
from meshsim.errors import DataFormatError
from meshsim.graph.batch import MeshGraph
from meshsim.graph.features import output_mask
from meshsim.graph.rigid import rigid_groups
from meshsim.mesh.hierarchy import cached_hierarchy, mesh_key
from meshsim.mesh.topology import edges_from_cells

TOPOLOGY_CACHE_SIZE = 256  # meshes whose edges and hierarchy stay in memory


class GraphBuilder:
    def __init__(self, cfg, dim: int):
        self.cfg, self.dim = cfg, dim
        self._topology_cache: dict[str, tuple] = {}  # mesh hash -> (edges, hierarchy levels)

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> Batch:
        """FrameWindowDataset items (windows of 2 + K frames: t-1, t, t+1, ...) -> one PyG Batch."""
        graphs = []
        for sample in samples:
            where = f"trajectory {sample.get('traj_id', '?')} frame {sample.get('t', '?')}"
            graph = self.static_graph(sample["mesh_pos"], sample["cells"], sample["node_type"],
                                      sample.get("attrs", {}), where)
            frames = torch.as_tensor(sample["world_pos"], dtype=torch.float32)
            if frames.ndim != 3 or frames.shape[0] < 3 or frames.shape[1:] != graph.mesh_pos.shape:
                raise DataFormatError(
                    f"{where}: world_pos window has shape {tuple(frames.shape)}, expected [2 + K, N, {self.dim}] "
                    "(use FrameWindowDataset(history=1, horizon=K))"
                )
            graph.prev_pos, graph.cur_pos, graph.next_pos = frames[0], frames[1], frames[2]
            fields = self._fields(sample, graph.num_nodes, frames.shape[0], where)  # [1 + K, N, F], from frame t
            graph.cur_fields, graph.next_fields = fields[0], fields[1]
            if frames.shape[0] > 3:  # later frames for unrolled training, node-major so that batching concatenates
                graph.future_pos = frames[3:].transpose(0, 1).contiguous()  # [N, K - 1, d]
                graph.future_fields = fields[2:].transpose(0, 1).contiguous()  # [N, K - 1, F]
            graphs.append(graph)
        return Batch.from_data_list(graphs)

    def prepare(self, mesh_pos, cells, node_type, attrs: Mapping[str, Any] | None = None) -> MeshGraph:
        """One mesh's static graph for a rollout (edges, hierarchy, material, rigid bodies), on the CPU."""
        graph = self.static_graph(mesh_pos, cells, node_type, attrs or {}, "mesh")
        graph.batch = torch.zeros(graph.num_nodes, dtype=torch.int64)
        if self.cfg.rigid_obstacles:  # predicted obstacle bodies only: kinematic ones come from the hint as given
            predicted = output_mask(graph.node_type, self.dim, self.cfg.predicted_type_ids).any(dim=-1)
            graph.rigid_group = rigid_groups(graph.edge_index, (graph.node_type == NodeType.OBSTACLE) & predicted)
        return graph

    def static_graph(self, mesh_pos, cells, node_type, attrs: Mapping[str, Any], where: str) -> MeshGraph:
        """Everything about one mesh that does not change over time (edges, hierarchy, material), validated."""
        mesh_np = np.asarray(_host(mesh_pos), dtype=np.float32)  # graphs are built on the CPU, from host arrays
        mesh_pos = torch.from_numpy(mesh_np)
        cells_np = np.asarray(_host(cells), dtype=np.int64)
        node_type = torch.as_tensor(node_type, dtype=torch.int64).cpu().reshape(-1)
        n = mesh_pos.shape[0]
        if mesh_pos.ndim != 2 or mesh_pos.shape[1] != self.dim:
            raise DataFormatError(
                f"{where}: mesh_pos has shape {tuple(mesh_pos.shape)}, the model expects [N, {self.dim}]"
            )
        if node_type.shape[0] != n:
            raise DataFormatError(f"{where}: node_type has {node_type.shape[0]} entries for {n} nodes")
        if n and (node_type.min() < 0 or node_type.max() >= NodeType.SIZE):
            raise DataFormatError(f"{where}: node_type values must lie in 0..{NodeType.SIZE - 1} (meshsim NodeType)")
        if cells_np.ndim != 2 or (cells_np.size and (cells_np.min() < 0 or cells_np.max() >= n)):
            raise DataFormatError(f"{where}: cells must be [M, k] with indices in 0..{n - 1}")
        edges, levels = self._topology(mesh_np, cells_np)
        graph = MeshGraph(num_nodes=n, mesh_pos=mesh_pos, node_type=node_type, edge_index=edges)
        graph.material = self._material(attrs, n, where)
        for i, (ids, level_edges) in enumerate(levels, start=1):
            graph.set_level(i, ids, level_edges)
        return graph

    def _topology(self, mesh_pos: np.ndarray, cells: np.ndarray):
        """Mesh edges and (HCMT) hierarchy levels 1..L as tensors, computed once per mesh."""
        cfg = self.cfg
        key = mesh_key(mesh_pos, cells, cfg.kind, cfg.levels, cfg.min_level_nodes, cfg.level_edge_factor)
        if key not in self._topology_cache:
            edges = torch.from_numpy(edges_from_cells(cells))
            levels = []
            if cfg.kind == "hcmt":
                hierarchy = cached_hierarchy(mesh_pos, cells, edges.numpy(), cfg.levels,
                                             cfg.hierarchy_cache_dir or None, cfg.min_level_nodes,
                                             cfg.level_edge_factor)
                levels = [(torch.from_numpy(level.ids), torch.from_numpy(level.edges))
                          for level in hierarchy.padded(cfg.levels)[1:]]
            if len(self._topology_cache) >= TOPOLOGY_CACHE_SIZE:
                self._topology_cache.pop(next(iter(self._topology_cache)))
            self._topology_cache[key] = (edges, levels)
        return self._topology_cache[key]

    def _material(self, attrs: Mapping[str, Any], n: int, where: str) -> torch.Tensor:
        values = []
        for key in self.cfg.material_keys:
            if key not in attrs:
                raise DataFormatError(
                    f"{where} has no attribute {key!r} for the material features: "
                    f"set model.material_keys to attributes it has ({', '.join(sorted(attrs)) or 'none'})"
                )
            values.append(torch.as_tensor(attrs[key], dtype=torch.float32).detach().cpu().reshape(-1)[0])
        values = torch.stack(values) if values else torch.zeros(0)  # tensor ops: attrs may live on any device
        return values.expand(n, len(values)).clone()

    def _fields(self, sample: Mapping[str, Any], n: int, frames: int, where: str) -> torch.Tensor:
        """[frames - 1, N, F]: the fields at frame t (the last input) and at every target frame of the window."""
        columns = []
        for name in self.cfg.fields:
            key = f"fields/{name}"
            if key not in sample:
                raise DataFormatError(f"{where} has no field {name!r}: set model.fields to the fields it has")
            window = torch.as_tensor(sample[key], dtype=torch.float32)
            if window.shape != (frames, n):
                raise DataFormatError(f"{where}: field {name!r} has shape {tuple(window.shape)}, expected "
                                      f"[{frames}, {n}] (scalar per node)")
            columns.append(window[1:])
        return torch.stack(columns, dim=-1) if columns else torch.zeros(frames - 1, n, 0)


def _host(x):
    """A tensor (on any device) as a CPU tensor numpy can read; anything else as it is."""
    return x.detach().cpu() if isinstance(x, torch.Tensor) else x
