"""Node types by rules, for meshes exported without them: `--node-type` strings parsed and applied.

A rule is one of

    NAME                  a point array holding NodeType numbers (meshsim's own exports: `node_type`)
    TYPE:ARRAY            nodes where the point array ARRAY is non-zero, or nodes of the cells of the cell set /
                          non-zero cell array ARRAY
    TYPE:x<=0             nodes of the reference mesh that satisfy every comma-separated bound: a plane
                          (`z==0`, within 1e-6 of the bounding-box diagonal), a half-space (`x<=0`) or a box
                          (`x>=0,x<=0.1,y<0.5`); operators <=, >=, <, >, ==

TYPE is a NodeType name (HANDLE, OBSTACLE, ..., case-insensitive) or its number. Rules apply in order; a later
rule overrides an earlier one on the nodes it selects. Everything else stays NORMAL.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from meshsim.datasets.schema import NodeType
from meshsim.errors import ConfigError, DataFormatError

_BOUND = re.compile(r"^\s*([xyz])\s*(<=|>=|==|<|>)\s*([-+0-9.eE]+)\s*$")
_AXES = {"x": 0, "y": 1, "z": 2}
PLANE_TOLERANCE = 1e-6  # of the bounding-box diagonal, for `==`


@dataclasses.dataclass(frozen=True)
class NodeTypeRule:
    text: str  # as the user wrote it, for messages
    node_type: int | None  # None: `array` holds the node types themselves
    array: str | None = None
    bounds: tuple[tuple[int, str, float], ...] = ()  # (axis, operator, value)


def node_type_value(name: str) -> int:
    """A NodeType from its name (any case) or number."""
    text = name.strip()
    if text.isdigit() and int(text) < NodeType.SIZE:
        return int(text)
    try:
        return int(NodeType[text.upper()])
    except KeyError:
        names = ", ".join(t.name for t in NodeType if t != NodeType.SIZE)
        raise ConfigError(f"node type {name!r} unknown; use one of {names} or a number 0..8") from None


def parse_rule(text: str) -> NodeTypeRule:
    """`NAME`, `TYPE:ARRAY` or `TYPE:x<=0[,y>1...]` -> NodeTypeRule; ConfigError with the syntax otherwise."""
    if ":" not in text:
        if not text.strip():
            raise ConfigError("--node-type needs NAME, TYPE:ARRAY or TYPE:x<=VALUE (e.g. HANDLE:x<=0)")
        return NodeTypeRule(text, None, array=text.strip())
    kind, _, body = text.partition(":")
    value = node_type_value(kind)
    if not any(op in body for op in "<>="):
        if not body.strip():
            raise ConfigError(f"--node-type {text!r}: name a point array, cell set or bound after ':'")
        return NodeTypeRule(text, value, array=body.strip())
    bounds = []
    for part in body.split(","):
        match = _BOUND.match(part)
        if not match:
            raise ConfigError(
                f"--node-type {text!r}: {part.strip()!r} is not a bound like x<=0, y>=1.5 or z==0 (axis x, y or z)"
            )
        try:
            bound = float(match.group(3))
        except ValueError:
            raise ConfigError(f"--node-type {text!r}: {match.group(3)!r} is not a number") from None
        bounds.append((_AXES[match.group(1)], match.group(2), bound))
    return NodeTypeRule(text, value, bounds=tuple(bounds))


def apply_rules(rules: list[NodeTypeRule], points: np.ndarray, point_data: dict[str, np.ndarray],
                cell_masks: dict[str, np.ndarray], where: str) -> np.ndarray:  # fmt: skip
    """Node types [N] int32 from `rules` on the reference `points` [N, d].

    point_data: point arrays of the first frame; cell_masks: name -> [N] bool, nodes of a cell set or of the
    cells where a cell array is non-zero."""
    num_nodes = len(points)
    node_type = np.zeros(num_nodes, np.int32)
    for rule in rules:
        if rule.bounds:
            node_type[_select_bounds(rule, points, where)] = rule.node_type
            continue
        if rule.node_type is None:
            values = _point_array(rule, point_data, cell_masks, where, cells_allowed=False)
            if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
                raise DataFormatError(f"{where}: point array {rule.array!r} holds non-integer node types")
            values = values.reshape(num_nodes, -1)[:, 0]
            if values.min() < 0 or values.max() >= NodeType.SIZE:
                raise DataFormatError(
                    f"{where}: point array {rule.array!r} holds node types outside 0..{NodeType.SIZE - 1}; "
                    f"use TYPE:{rule.array} to mark its non-zero nodes instead"
                )  # fmt: skip
            node_type = values.astype(np.int32)
            continue
        mask = _point_array(rule, point_data, cell_masks, where, cells_allowed=True)
        node_type[mask.reshape(num_nodes, -1).any(axis=1)] = rule.node_type
    return node_type


def _point_array(rule, point_data, cell_masks, where: str, cells_allowed: bool) -> np.ndarray:
    if rule.array in point_data:
        values = np.asarray(point_data[rule.array])
        if not np.isfinite(values).all():
            raise DataFormatError(f"{where}: point array {rule.array!r} holds NaN or inf; it cannot give node types")
        return values
    if cells_allowed and rule.array in cell_masks:
        return cell_masks[rule.array]
    names = sorted(point_data) + (sorted(cell_masks) if cells_allowed else [])
    raise DataFormatError(
        f"{where}: --node-type {rule.text!r}: no point array{' or cell set' if cells_allowed else ''} named "
        f"{rule.array!r}; the file has: {', '.join(names) or 'none'}"
    )  # fmt: skip


def _select_bounds(rule: NodeTypeRule, points: np.ndarray, where: str) -> np.ndarray:
    diagonal = float(np.linalg.norm(points.max(0) - points.min(0))) or 1.0
    selected = np.ones(len(points), bool)
    for axis, op, value in rule.bounds:
        if axis >= points.shape[1]:
            raise DataFormatError(f"{where}: --node-type {rule.text!r} uses z, but the mesh is 2-D")
        c = points[:, axis]
        tol = PLANE_TOLERANCE * diagonal
        selected &= {"<=": c <= value + tol, ">=": c >= value - tol, "<": c < value, ">": c > value,
                     "==": np.abs(c - value) <= tol}[op]  # fmt: skip
    if not selected.any():
        lo, hi = points.min(0), points.max(0)
        box = ", ".join(f"{'xyz'[i]} {lo[i]:.6g}..{hi[i]:.6g}" for i in range(points.shape[1]))
        raise DataFormatError(f"{where}: --node-type {rule.text!r} selects no node (the mesh spans {box})")
    return selected
