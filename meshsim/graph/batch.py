"""`MeshGraph`: the PyG `Data` that carries one frame window's topology and positions, hierarchy included.

Per-level keys batch with the right offsets: `level_ids_<i>` (i >= 1) index level i-1 nodes and are offset by
the level i-1 size of the preceding graphs; `level_edges_<i>` are local to level i and offset by its size.
Level 0 is the mesh itself (`edge_index`).
"""

from __future__ import annotations

from torch_geometric.data import Data

_IDS = "level_ids_"
_EDGES = "level_edges_"


class MeshGraph(Data):
    def level_size(self, level: int) -> int:
        return int(self.num_nodes) if level == 0 else int(self[f"{_IDS}{level}"].numel())

    @property
    def num_levels(self) -> int:
        """Coarse levels stored (0 for MeshGraphNets graphs)."""
        return sum(1 for key in self.keys() if key.startswith(_IDS))

    def level_ids(self, level: int):
        return self[f"{_IDS}{level}"]

    def level_edges(self, level: int):
        return self.edge_index if level == 0 else self[f"{_EDGES}{level}"]

    def set_level(self, level: int, ids, edges) -> None:
        self[f"{_IDS}{level}"] = ids
        self[f"{_EDGES}{level}"] = edges

    def __inc__(self, key, value, *args, **kwargs):
        if key.startswith(_IDS):
            return self.level_size(int(key[len(_IDS):]) - 1)
        if key.startswith(_EDGES):
            return self.level_size(int(key[len(_EDGES):]))
        return super().__inc__(key, value, *args, **kwargs)

    def __cat_dim__(self, key, value, *args, **kwargs):
        if key.startswith(_EDGES):
            return 1
        return super().__cat_dim__(key, value, *args, **kwargs)
