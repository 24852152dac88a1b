"""LearnedSimulator: normalize -> HCMT/MGN network -> integrate, as one `nn.Module`.

    sim = LearnedSimulator(ModelConfig(kind="hcmt"), dim=2)
    batch = sim.collate(samples)            # FrameWindowDataset items (history=1, horizon=1); sim.builder.collate
    loss, logs = sim.loss(batch, accumulate_stats=True)
    static = sim.prepare(mesh_pos, cells, node_type, attrs)
    next_pos, fields = sim.step(static, prev_pos, cur_pos, next_pos_hint)

Graphs come from `meshsim.graph.GraphBuilder` (`sim.builder`: edges, hierarchy, material, batching; the trainer's
DataLoader runs it as its collate_fn). Normalizers are buffers, so `state_dict()` carries their statistics into
checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch_geometric.data import Batch

from meshsim.datasets.schema import NodeType
from meshsim.errors import DataFormatError
from meshsim.graph import (
    EdgeSet,
    GraphBuilder,
    GroupedNormalizer,
    MeshGraph,
    MultiGraph,
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
from meshsim.graph.rigid import project_rigid
from meshsim.models.config import ModelConfig
from meshsim.models.hcmt import HCMT
from meshsim.models.mgn import MeshGraphNet


class LearnedSimulator(nn.Module):
    def __init__(self, cfg: ModelConfig, dim: int):
        super().__init__()
        if dim not in (2, 3):
            raise DataFormatError(f"learned simulators support 2D or 3D meshes, got dim={dim}")
        self.cfg, self.dim = cfg, dim
        self.builder = GraphBuilder(cfg, dim)  # samples and meshes -> graphs; holds no weights
        node_width = (dim + NodeType.SIZE + len(cfg.material_keys) + (dim if cfg.kinematic_input else 0)
                      + (dim if cfg.displacement_input else 0) + (len(cfg.fields) if cfg.field_input else 0))
        mesh_edge_width, contact_width = 2 * dim + 2, dim + 1
        out_width = dim + len(cfg.fields)
        self.node_normalizer = Normalizer(node_width)
        self.mesh_edge_normalizer = Normalizer(mesh_edge_width)
        self.contact_edge_normalizer = Normalizer(contact_width)
        # per type: OBSTACLE rows, the rest (only then: checkpoints of models without it keep their state_dict)
        self.target_normalizer = GroupedNormalizer(dim, 2) if cfg.target_norm_by_type else Normalizer(dim)
        self.field_normalizer = Normalizer(max(len(cfg.fields), 1))
        if cfg.field_input:  # the field target is then the change over a step (only then: older checkpoints load)
            self.field_change_normalizer = Normalizer(len(cfg.fields))
        if cfg.edge_loss_weight > 0:  # only then: checkpoints of models without it keep their state_dict
            self.edge_target_normalizer = Normalizer(dim)
        if cfg.kind == "hcmt":
            self.network = HCMT.from_config(cfg, node_width, mesh_edge_width, contact_width, out_width)
        else:
            self.network = MeshGraphNet.from_config(cfg, node_width, [mesh_edge_width, contact_width], out_width)

    # ----------------------------------------------------------------------------------------------- graphs
    def collate(self, samples: Sequence[Mapping[str, Any]]) -> Batch:
        """FrameWindowDataset items -> one PyG Batch on the CPU (`GraphBuilder.collate`)."""
        return self.builder.collate(samples)

    # ------------------------------------------------------------------------------------------------ network
    def output_mask(self, node_type: torch.Tensor) -> torch.Tensor:
        """[N, d] bool: predicted components (HANDLE: none; SYMMETRIC: all but x). Also the loss mask."""
        return output_mask(torch.as_tensor(node_type).reshape(-1), self.dim, self.cfg.predicted_type_ids)

    def _forward(self, graph, prev_pos, cur_pos, next_hint, accumulate: bool,
                 cur_fields: torch.Tensor | None = None) -> torch.Tensor:
        """Normalized prediction [N, d + fields] at positions (prev_pos, cur_pos) (and fields [N, F] at t when
        `cfg.field_input`)."""
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
        if cfg.field_input:
            x = torch.cat([x, self._require_fields(cur_fields)], dim=-1)
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
            second_name = "world" if cfg.world_edges else "contact"
            return self.network(MultiGraph(x, [EdgeSet("mesh", graph.edge_index, mesh_x),
                                               EdgeSet(second_name, second, second_x)]))
        edges, ids, feats = [graph.edge_index], [], []
        world, mesh = cur_pos, graph.mesh_pos
        feats.append(mesh_edge_features(world, mesh, graph.edge_index))
        for i in range(1, cfg.levels + 1):
            level_ids, level_edges = graph.level_ids(i), graph.level_edges(i)
            world, mesh = world[level_ids], mesh[level_ids]
            ids.append(level_ids)
            edges.append(level_edges)
            feats.append(mesh_edge_features(world, mesh, level_edges))
        mesh_x = self.mesh_edge_normalizer(torch.cat(feats), accumulate).split([e.shape[1] for e in edges])
        sets = [EdgeSet(f"mesh_{i}" if i else "mesh", e, f) for i, (e, f) in enumerate(zip(edges, mesh_x))]
        return self.network(MultiGraph(x, [*sets, EdgeSet("contact", second, second_x)], level_ids=ids))

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
        cur_fields = batch.cur_fields if cfg.field_input else None
        if unroll:
            future = getattr(batch, "future_pos", None)
            if future is None or future.shape[1] < unroll:
                have = 0 if future is None else future.shape[1]
                raise DataFormatError(f"unroll={unroll} needs {unroll} frames after the target, the batch has {have}:"
                                      f" use FrameWindowDataset(history=1, horizon={unroll + 1})")
            truth = [batch.next_pos, *future.unbind(1)]
            with torch.no_grad():
                for k in range(unroll):
                    advanced, fields = self._advance(batch, prev_pos, cur_pos, truth[k], cur_fields)
                    prev_pos, cur_pos = cur_pos, advanced
                    if cfg.field_input:  # the fields, too, come from the model's own rollout
                        cur_fields = self.field_state(fields)
            next_pos, true_fields = truth[unroll], batch.future_fields[:, unroll - 1]
        if self.training:
            cur_pos, next_pos = add_training_noise(cur_pos, next_pos, batch.node_type, cfg.noise_std, cfg.noise_gamma)
        pred = self._forward(batch, prev_pos, cur_pos, next_pos, accumulate, cur_fields)
        physical_target = position_target(prev_pos, cur_pos, next_pos, cfg.target)
        target = self._normalize_target(physical_target, batch.node_type, accumulate)
        mask = self.output_mask(batch.node_type).to(pred.dtype)
        position_loss = (((pred[:, : self.dim] - target) ** 2) * mask).sum(-1).mean()
        loss = position_loss
        logs = {"loss_position": position_loss.detach()}  # tensors: the trainer reads them back when it logs
        if cfg.edge_loss_weight > 0:
            update = self._target_inverse(pred[:, : self.dim], batch.node_type)
            edge_loss = self._edge_loss(batch.edge_index, batch.node_type, update, physical_target, mask, accumulate)
            loss = loss + cfg.edge_loss_weight * edge_loss
            logs["loss_edges"] = edge_loss.detach()
        if cfg.fields:
            if cfg.field_input:
                fields = self.field_change_normalizer(true_fields - cur_fields, accumulate)
            else:
                fields = self.field_normalizer(true_fields, accumulate)
            field_loss = ((pred[:, self.dim :] - fields) ** 2).sum(-1).mean()
            loss = loss + field_loss
            logs["loss_fields"] = field_loss.detach()
        logs["loss"] = loss.detach()
        return loss, logs

    def field_state(self, fields: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """[N, F]: a step's fields (by name) as the input of the next step of a `cfg.field_input` model."""
        return torch.stack([fields[name] for name in self.cfg.fields], dim=-1)

    def _require_fields(self, cur_fields: torch.Tensor | None) -> torch.Tensor:
        if cur_fields is None:
            raise DataFormatError(f"this model carries its fields ({', '.join(self.cfg.fields)}) from step to step "
                                  "(model.field_input): pass their values at t, e.g. step(..., fields=...)")
        return cur_fields

    def _normalize_target(self, target: torch.Tensor, node_type: torch.Tensor, accumulate: bool) -> torch.Tensor:
        if self.cfg.target_norm_by_type:
            return self.target_normalizer(target, self._target_group(node_type), accumulate)
        return self.target_normalizer(target, accumulate)

    def _target_inverse(self, pred: torch.Tensor, node_type: torch.Tensor) -> torch.Tensor:
        if self.cfg.target_norm_by_type:
            return self.target_normalizer.inverse(pred, self._target_group(node_type))
        return self.target_normalizer.inverse(pred)

    @staticmethod
    def _target_group(node_type: torch.Tensor) -> torch.Tensor:
        return (torch.as_tensor(node_type).reshape(-1) == NodeType.OBSTACLE).long()

    def _edge_loss(self, edges, node_type, update, true, mask, accumulate: bool) -> torch.Tensor:
        """MSE of the normalized difference of the update (physical units, predicted `update` against `true`)
        between the two ends of each mesh edge of the deformable body (predicted components at both ends, no
        OBSTACLE node: obstacles are rigid or kinematic): the relative motion of neighbours, which sets the
        strain."""
        src, dst = edges
        deformable = (node_type != NodeType.OBSTACLE).to(update.dtype)[:, None]
        both = mask[src] * mask[dst] * deformable[src] * deformable[dst]
        truth = true[dst] - true[src]
        if accumulate:
            self.edge_target_normalizer.accumulate(truth[both.bool().all(-1)])
        truth, guess = self.edge_target_normalizer(truth), self.edge_target_normalizer(update[dst] - update[src])
        return (((guess - truth) ** 2) * both).sum(-1).mean()

    # ----------------------------------------------------------------------------------------------- rollout
    def prepare(self, mesh_pos, cells, node_type, attrs: Mapping[str, Any] | None = None) -> MeshGraph:
        """Per-mesh static graph (edges, hierarchy, material, rigid bodies) on the model's device; reuse it for every
        step (`GraphBuilder.prepare`)."""
        return self.builder.prepare(mesh_pos, cells, node_type, attrs).to(self._device())

    @torch.no_grad()
    def step(self, static: MeshGraph, prev_pos: torch.Tensor, cur_pos: torch.Tensor,
             next_pos_hint: torch.Tensor | None = None,
             fields: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One step: (x_{t-1}, x_t) -> x_{t+1} and fields at t+1 (physical units). No noise, no statistics.

        Components the model does not predict come from `next_pos_hint` (ground truth of kinematic/clamped
        nodes), or stay at `cur_pos` when no hint is given. A model with `cfg.field_input` also needs `fields`,
        the fields at t as [N, F] in the order of `cfg.fields` (in a rollout: what it predicted the step before).
        """
        device = self._device()
        prev_pos, cur_pos = prev_pos.to(device, torch.float32), cur_pos.to(device, torch.float32)
        hint = next_pos_hint.to(device, torch.float32) if next_pos_hint is not None else None
        fields = fields.to(device, torch.float32) if fields is not None else None
        return self._advance(static, prev_pos, cur_pos, hint, fields)

    def _advance(self, graph, prev_pos, cur_pos, hint,
                 cur_fields: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Network step in physical units: next positions (unpredicted components from `hint`, else held) and
        fields; rigid obstacle bodies projected when the graph carries `rigid_group` (see `prepare`)."""
        pred = self._forward(graph, prev_pos, cur_pos, hint, False, cur_fields)
        update = self._target_inverse(pred[:, : self.dim], graph.node_type)
        next_pos = integrate(prev_pos, cur_pos, update, self.cfg.target)
        fallback = hint if hint is not None else cur_pos
        next_pos = torch.where(self.output_mask(graph.node_type), next_pos, fallback)
        groups = getattr(graph, "rigid_group", None)
        if groups is not None:
            next_pos = project_rigid(next_pos, graph.mesh_pos, groups)
        if self.cfg.field_input:
            values = cur_fields + self.field_change_normalizer.inverse(pred[:, self.dim :])
        else:
            values = self.field_normalizer.inverse(pred[:, self.dim :]) if self.cfg.fields else pred[:, :0]
        fields = {}
        for i, name in enumerate(self.cfg.fields):
            fields[name] = values[:, i].clamp_min(0.0) if name in self.cfg.nonnegative_fields else values[:, i]
        return next_pos, fields

    def _device(self) -> torch.device:
        return next(self.parameters()).device

