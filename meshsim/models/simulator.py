"""LearnedSimulator: graph building + normalizers + HCMT/MGN network, as one `nn.Module`.

    sim = LearnedSimulator(ModelConfig(kind="hcmt"), dim=2)
    batch = sim.collate(samples)            # FrameWindowDataset items (history=1, horizon=1)
    loss, logs = sim.loss(batch, accumulate_stats=True)
    static = sim.prepare(mesh_pos, cells, node_type, attrs)
    next_pos, fields = sim.step(static, prev_pos, cur_pos, next_pos_hint)

Normalizers are buffers, so `state_dict()` carries their statistics into checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch

from meshsim.datasets.schema import NodeType
from meshsim.errors import DataFormatError
from meshsim.graph import (
    MeshGraph,
    Normalizer,
    add_training_noise,
    contact_edges,
    integrate,
    mesh_edge_features,
    node_features,
    output_mask,
    position_target,
    world_edges,
)
from meshsim.graph.edges import edge_offsets
from meshsim.graph.rigid import project_rigid, rigid_groups
from meshsim.mesh.hierarchy import cached_hierarchy, mesh_key
from meshsim.mesh.topology import edges_from_cells
from meshsim.models.config import ModelConfig
from meshsim.models.hcmt import HCMT
from meshsim.models.mgn import MeshGraphNet


class LearnedSimulator(nn.Module):
    def __init__(self, cfg: ModelConfig, dim: int):
        super().__init__()
        if dim not in (2, 3):
            raise DataFormatError(f"learned simulators support 2D or 3D meshes, got dim={dim}")
        self.cfg, self.dim = cfg, dim
        self._topology_cache: dict[str, tuple] = {}  # mesh hash -> (edges, hierarchy levels); not state
        node_width = (dim + NodeType.SIZE + len(cfg.material_keys) + (dim if cfg.kinematic_input else 0)
                      + (dim if cfg.displacement_input else 0))
        mesh_edge_width, contact_width = 2 * dim + 2, dim + 1
        out_width = dim + len(cfg.fields)
        self.node_normalizer = Normalizer(node_width)
        self.mesh_edge_normalizer = Normalizer(mesh_edge_width)
        self.contact_edge_normalizer = Normalizer(contact_width)
        self.target_normalizer = Normalizer(dim)
        self.field_normalizer = Normalizer(max(len(cfg.fields), 1))
        if cfg.kind == "hcmt":
            self.network = HCMT(node_width, mesh_edge_width, contact_width, out_width, cfg.latent, cfg.heads,
                                cfg.cmt_blocks, cfg.levels, cfg.mlp_layers, cfg.attention)
        else:
            self.network = MeshGraphNet(node_width, [mesh_edge_width, contact_width], out_width, cfg.latent,
                                        cfg.blocks, cfg.mlp_layers)

    # ----------------------------------------------------------------------------------------------- topology
    def _static_graph(self, mesh_pos, cells, node_type, attrs: Mapping[str, Any], where: str) -> MeshGraph:
        """Everything about one mesh that does not change over time (edges, hierarchy, material)."""
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
            if len(self._topology_cache) >= 256:
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

    def collate(self, samples: Sequence[Mapping[str, Any]]) -> Batch:
        """FrameWindowDataset items (windows of 3 frames: t-1, t, t+1) -> one PyG Batch."""
        graphs = []
        for sample in samples:
            where = f"trajectory {sample.get('traj_id', '?')} frame {sample.get('t', '?')}"
            graph = self._static_graph(sample["mesh_pos"], sample["cells"], sample["node_type"],
                                       sample.get("attrs", {}), where)
            frames = torch.as_tensor(sample["world_pos"], dtype=torch.float32)
            if frames.ndim != 3 or frames.shape[0] < 3 or frames.shape[1:] != graph.mesh_pos.shape:
                raise DataFormatError(
                    f"{where}: world_pos window has shape {tuple(frames.shape)}, expected [2 + K, N, {self.dim}] "
                    "(use FrameWindowDataset(history=1, horizon=K))"
                )
            graph.prev_pos, graph.cur_pos, graph.next_pos = frames[0], frames[1], frames[2]
            fields = self._fields(sample, graph.num_nodes, frames.shape[0], where)  # [K, N, F]
            graph.next_fields = fields[0]
            if frames.shape[0] > 3:  # later frames for unrolled training, node-major so that batching concatenates
                graph.future_pos = frames[3:].transpose(0, 1).contiguous()  # [N, K - 1, d]
                graph.future_fields = fields[1:].transpose(0, 1).contiguous()  # [N, K - 1, F]
            graphs.append(graph)
        return Batch.from_data_list(graphs)

    def _fields(self, sample: Mapping[str, Any], n: int, frames: int, where: str) -> torch.Tensor:
        """[frames - 2, N, F]: the predicted fields at every target frame of the window."""
        columns = []
        for name in self.cfg.fields:
            key = f"fields/{name}"
            if key not in sample:
                raise DataFormatError(f"{where} has no field {name!r}: set model.fields to the fields it has")
            window = torch.as_tensor(sample[key], dtype=torch.float32)
            if window.shape != (frames, n):
                raise DataFormatError(f"{where}: field {name!r} has shape {tuple(window.shape)}, expected "
                                      f"[{frames}, {n}] (scalar per node)")
            columns.append(window[2:])
        return torch.stack(columns, dim=-1) if columns else torch.zeros(frames - 2, n, 0)

    # ------------------------------------------------------------------------------------------------ network
    def output_mask(self, node_type: torch.Tensor) -> torch.Tensor:
        """[N, d] bool: predicted components (HANDLE: none; SYMMETRIC: all but x). Also the loss mask."""
        return output_mask(torch.as_tensor(node_type).reshape(-1), self.dim, self.cfg.predicted_type_ids)

    def _forward(self, graph, prev_pos, cur_pos, next_hint, accumulate: bool) -> torch.Tensor:
        """Normalized prediction [N, d + fields] at positions (prev_pos, cur_pos)."""
        cfg, mask = self.cfg, self.output_mask(graph.node_type)
        motion = None
        if cfg.kinematic_input:
            kinematic = ~mask.any(dim=-1, keepdim=True)
            motion = (next_hint - cur_pos) * kinematic if next_hint is not None else torch.zeros_like(cur_pos)
        displacement = None
        if cfg.displacement_input:  # x_t - X of the deformable nodes (obstacles keep translation invariance)
            body = (graph.node_type != NodeType.OBSTACLE)[:, None].to(cur_pos.dtype)
            displacement = (cur_pos - graph.mesh_pos) * body
        x = node_features(prev_pos, cur_pos, graph.node_type, graph.material, motion, displacement)
        x = self.node_normalizer(x, accumulate)
        batch = getattr(graph, "batch", None)
        if cfg.kind == "mgn" and cfg.world_edges:
            second = world_edges(cur_pos, graph.edge_index, cfg.contact_radius, batch)
        else:
            second = contact_edges(cur_pos, graph.node_type, cfg.contact_radius, batch)
        second_x = self.contact_edge_normalizer(edge_offsets(cur_pos, second), accumulate)
        if cfg.kind == "mgn":
            mesh_x = self.mesh_edge_normalizer(mesh_edge_features(cur_pos, graph.mesh_pos, graph.edge_index),
                                               accumulate)
            return self.network(x, [(graph.edge_index, mesh_x), (second, second_x)])
        edges, ids, feats = [graph.edge_index], [None], []
        world, mesh = cur_pos, graph.mesh_pos
        feats.append(mesh_edge_features(world, mesh, graph.edge_index))
        for i in range(1, cfg.levels + 1):
            level_ids, level_edges = graph.level_ids(i), graph.level_edges(i)
            world, mesh = world[level_ids], mesh[level_ids]
            ids.append(level_ids)
            edges.append(level_edges)
            feats.append(mesh_edge_features(world, mesh, level_edges))
        mesh_x = self.mesh_edge_normalizer(torch.cat(feats), accumulate)
        return self.network(x, edges, mesh_x, ids, second, second_x)

    def loss(self, batch, accumulate_stats: bool = False, unroll: int = 0) -> tuple[torch.Tensor, dict[str, float]]:
        """Masked MSE of normalized Delta-x (or acceleration) plus MSE of normalized fields at the target frame.

        `unroll` = u > 0 (pushforward training): the model first rolls u steps from (x_{t-1}, x_t) without
        gradients, feeding back its own predictions, and the loss is that of the next step, taken from those
        predicted inputs against the ground truth x_{t+u+1}: the model learns to correct the errors it makes
        in a rollout instead of only those of the training noise. The batch must hold u later frames
        (FrameWindowDataset horizon >= u + 1). Noise is added in training mode only, to the last step's input;
        statistics accumulate when `accumulate_stats` and training.
        """
        cfg = self.cfg
        accumulate = accumulate_stats and self.training
        prev_pos, cur_pos, next_pos, true_fields = batch.prev_pos, batch.cur_pos, batch.next_pos, batch.next_fields
        if unroll:
            future = getattr(batch, "future_pos", None)
            if future is None or future.shape[1] < unroll:
                have = 0 if future is None else future.shape[1]
                raise DataFormatError(f"unroll={unroll} needs {unroll} frames after the target, the batch has {have}:"
                                      f" use FrameWindowDataset(history=1, horizon={unroll + 1})")
            truth = [batch.next_pos, *future.unbind(1)]
            with torch.no_grad():
                for k in range(unroll):
                    prev_pos, cur_pos = cur_pos, self._advance(batch, prev_pos, cur_pos, truth[k])[0]
            next_pos, true_fields = truth[unroll], batch.future_fields[:, unroll - 1]
        if self.training:
            cur_pos, next_pos = add_training_noise(cur_pos, next_pos, batch.node_type, cfg.noise_std, cfg.noise_gamma)
        pred = self._forward(batch, prev_pos, cur_pos, next_pos, accumulate)
        target = self.target_normalizer(position_target(prev_pos, cur_pos, next_pos, cfg.target), accumulate)
        mask = self.output_mask(batch.node_type).to(pred.dtype)
        position_loss = (((pred[:, : self.dim] - target) ** 2) * mask).sum(-1).mean()
        loss = position_loss
        logs = {"loss_position": position_loss.detach()}  # tensors: the trainer reads them back when it logs
        if cfg.fields:
            fields = self.field_normalizer(true_fields, accumulate)
            field_loss = ((pred[:, self.dim :] - fields) ** 2).sum(-1).mean()
            loss = loss + field_loss
            logs["loss_fields"] = field_loss.detach()
        logs["loss"] = loss.detach()
        return loss, logs

    # ----------------------------------------------------------------------------------------------- rollout
    def prepare(self, mesh_pos, cells, node_type, attrs: Mapping[str, Any] | None = None) -> MeshGraph:
        """Per-mesh static graph (edges, hierarchy, material) on the model's device; reuse it for every step."""
        graph = self._static_graph(mesh_pos, cells, node_type, attrs or {}, "mesh")
        graph.batch = torch.zeros(graph.num_nodes, dtype=torch.int64)
        if self.cfg.rigid_obstacles:  # predicted obstacle bodies only: kinematic ones come from the hint as given
            predicted = self.output_mask(graph.node_type).any(dim=-1)
            graph.rigid_group = rigid_groups(graph.edge_index, (graph.node_type == NodeType.OBSTACLE) & predicted)
        return graph.to(self._device())

    @torch.no_grad()
    def step(self, static: MeshGraph, prev_pos: torch.Tensor, cur_pos: torch.Tensor,
             next_pos_hint: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One step: (x_{t-1}, x_t) -> x_{t+1} and fields at t+1 (physical units). No noise, no statistics.

        Components the model does not predict come from `next_pos_hint` (ground truth of kinematic/clamped
        nodes), or stay at `cur_pos` when no hint is given.
        """
        device = self._device()
        prev_pos, cur_pos = prev_pos.to(device, torch.float32), cur_pos.to(device, torch.float32)
        hint = next_pos_hint.to(device, torch.float32) if next_pos_hint is not None else None
        return self._advance(static, prev_pos, cur_pos, hint)

    def _advance(self, graph, prev_pos, cur_pos, hint) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Network step in physical units: next positions (unpredicted components from `hint`, else held) and
        fields; rigid obstacle bodies projected when the graph carries `rigid_group` (see `prepare`)."""
        pred = self._forward(graph, prev_pos, cur_pos, hint, accumulate=False)
        update = self.target_normalizer.inverse(pred[:, : self.dim])
        next_pos = integrate(prev_pos, cur_pos, update, self.cfg.target)
        fallback = hint if hint is not None else cur_pos
        next_pos = torch.where(self.output_mask(graph.node_type), next_pos, fallback)
        groups = getattr(graph, "rigid_group", None)
        if groups is not None:
            next_pos = project_rigid(next_pos, graph.mesh_pos, groups)
        values = self.field_normalizer.inverse(pred[:, self.dim :]) if self.cfg.fields else pred[:, :0]
        fields = {}
        for i, name in enumerate(self.cfg.fields):
            fields[name] = values[:, i].clamp_min(0.0) if name in self.cfg.nonnegative_fields else values[:, i]
        return next_pos, fields

    def _device(self) -> torch.device:
        return next(self.parameters()).device


def _host(x):
    """A tensor (on any device) as a CPU tensor numpy can read; anything else as it is."""
    return x.detach().cpu() if isinstance(x, torch.Tensor) else x

