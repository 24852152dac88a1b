"""The colour map shared by the page (sent in /api/meta), the renderer and the mesh exports."""

from __future__ import annotations

import numpy as np

COLORMAP = "viridis"  # perceptually uniform, readable in grey and by colour-blind readers
TABLE_SIZE = 256


def colormap_table(name: str = COLORMAP, size: int = TABLE_SIZE) -> np.ndarray:
    """sRGB colours in [0, 1], float32 [size, 3], sampled from matplotlib's map of that name."""
    from matplotlib import colormaps

    return colormaps[name](np.linspace(0.0, 1.0, size))[:, :3].astype(np.float32)


def colorize(values: np.ndarray, lo: float, hi: float, name: str = COLORMAP) -> np.ndarray:
    """Per-node RGBA bytes [N, 4] for values mapped linearly from [lo, hi] (clamped) onto the colour map."""
    table = colormap_table(name)
    span = hi - lo if hi > lo else 1.0
    index = np.clip((np.asarray(values, np.float64) - lo) / span, 0.0, 1.0) * (len(table) - 1)
    rgb = np.round(table[np.round(index).astype(np.int64)] * 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=1)
