"""Graph building for learned mesh simulators: the builder (samples -> batched graphs), edge sets, features,
normalizers, noise, targets, masks."""

from meshsim.graph.attention import edge_attention, edge_attention_reference
from meshsim.graph.batch import MeshGraph
from meshsim.graph.builder import GraphBuilder
from meshsim.graph.edges import (
    contact_edges,
    edge_offsets,
    mesh_edge_features,
    radius_pairs,
    radius_pairs_reference,
    world_edges,
)
from meshsim.graph.features import add_training_noise, integrate, node_features, output_mask, position_target
from meshsim.graph.multigraph import EdgeSet, MultiGraph
from meshsim.graph.normalizer import GroupedNormalizer, Normalizer

__all__ = [
    "EdgeSet",
    "MultiGraph",
    "GraphBuilder",
    "GroupedNormalizer",
    "MeshGraph",
    "Normalizer",
    "add_training_noise",
    "contact_edges",
    "edge_attention",
    "edge_attention_reference",
    "edge_offsets",
    "integrate",
    "mesh_edge_features",
    "node_features",
    "output_mask",
    "position_target",
    "radius_pairs",
    "radius_pairs_reference",
    "world_edges",
]
