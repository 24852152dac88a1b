"""Ground-truth particle trajectories for NCLaw: one trajectory per material in an HDF5 store."""

from __future__ import annotations

import os
from collections.abc import Sequence

from meshsim.config import apply_overrides, from_dict, read_yaml
from meshsim.errors import ConfigError
from meshsim.progress import progress


def scene_config(material: str | None = None, overrides: Sequence[str] = (), config_path: str | None = None):
    """Scene config from an optional YAML file and key=value overrides; `material` sets every body's material."""
    from meshsim.scenarios.mpm_blob import MPMSceneConfig

    data = read_yaml(config_path) if config_path else {}
    data = apply_overrides(data, overrides)
    cfg = from_dict(MPMSceneConfig, data, where=str(config_path or "nclaw scene"))
    if material is not None:
        from dataclasses import replace

        cfg = replace(cfg, bodies=[replace(b, material=material) for b in cfg.bodies])
    return cfg


def generate_ground_truth(out: str, materials: Sequence[str], overrides: Sequence[str] = (),
                          config_path: str | None = None, seed: int = 0) -> dict:
    """Simulate the scene once per material with its analytic law into `out` (trajectory id = material).

    With no materials, the scene runs once as configured (each body keeps its own material; id = the
    materials joined by '+'). Resumes: trajectories already in the file are skipped. Returns {id: frames}.
    """
    from meshsim.datasets import TrajectoryWriter
    from meshsim.physics.materials import PRESETS
    from meshsim.scenarios.mpm_blob import simulate

    for m in materials:
        if m not in PRESETS:
            raise ConfigError(f"unknown material {m!r}; choose from {', '.join(PRESETS)}")
    if materials:
        configs = {m: scene_config(m, overrides, config_path) for m in materials}  # validate all first
    else:
        cfg = scene_config(None, overrides, config_path)
        configs = {"+".join(dict.fromkeys(b.material for b in cfg.bodies)): cfg}
    from meshsim.physics.mpm import load_mesh
    from meshsim.scenarios.mpm_blob import BUILTIN_SHAPES, mesh_path

    for cfg in configs.values():  # refuse unusable body meshes before the output file is created
        for body in cfg.bodies:
            if body.shape not in BUILTIN_SHAPES:
                load_mesh(mesh_path(body.shape))
    done = {}
    with TrajectoryWriter(out, attrs={"creator_tool": "meshsim nclaw generate"}) as writer:  # makes the folder
        bar = progress(len(configs), len(set(configs) & set(writer.ids)),
                       desc=f"nclaw generate -> {os.path.basename(out)}", unit="traj")
        for m, cfg in configs.items():
            if m in writer.ids:
                continue
            traj = simulate(cfg, seed)
            writer.write(m, traj)
            done[m] = traj.num_frames
            bar.update(1)
        bar.close()
    return done
