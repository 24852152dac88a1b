"""MPM scenes: one or more bodies (cube, sphere or a mesh) of named materials thrown into the unit box.

`nclaw_blob` is NCLaw's training scene by default: a 0.5 m jelly cube of 10^3 particles at the centre with
linear velocity (1, -1.5, -2) m/s and angular velocity (4, 4, 4) rad/s, 20^3 grid, dt 5e-4 s. Trajectories
store particle positions (cells [N, 1] = particle index, so the viewer shows points) and, for teacher forcing,
the full MPM state per frame in fields velocity [3], C [9] and F [9].
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from meshsim.config import from_dict, to_dict
from meshsim.errors import ConfigError
from meshsim.scenarios.base import Scenario

BUILTIN_SHAPES = ("cube", "sphere")


def mesh_path(shape: str) -> Path:
    """A shape name shipped in meshsim.data/meshes (torus, star, blob) or a mesh file path."""
    shipped = Path(str(importlib.resources.files("meshsim.data").joinpath("meshes", f"{shape}.obj")))
    return shipped if shipped.is_file() else Path(shape)


@dataclass
class BodyConfig:
    material: str = "jelly"  # jelly | plasticine | sand | water (meshsim.physics.materials.PRESETS)
    shape: str = "cube"  # cube | sphere | a shipped mesh (torus, star, blob) | a mesh file
    center: tuple[float, float, float] = (0.5, 0.5, 0.5)
    size: float = 0.5  # edge (cube), diameter (sphere) or longest side (mesh), m
    velocity: tuple[float, float, float] = (1.0, -1.5, -2.0)  # m/s
    angular_velocity: tuple[float, float, float] = (4.0, 4.0, 4.0)  # rad/s about the body centre
    density: float = 1000.0  # kg/m^3


@dataclass
class MPMSceneConfig:
    preset: str = "small"
    res: int = 20  # grid cells per side of the unit box
    dt: float = 5e-4  # s per MPM step
    steps: int = 100  # MPM steps simulated
    frame_every: int = 1  # store every k-th step
    spacing: float = 0.05  # particle lattice spacing, m (0.05 -> 10^3 particles in the 0.5 m cube)
    wall: str = "free_slip"
    gravity: tuple[float, float, float] = (0.0, -9.8, 0.0)
    bodies: list[BodyConfig] = field(default_factory=lambda: [BodyConfig()])
    random_velocity: bool = False  # draw |v| in [0, 3] m/s and omega in [0, 3]^3 rad/s from the seed
    store_state: bool = True  # store velocity, C, F per frame (needed for teacher-forced training)

    def __post_init__(self):
        from meshsim.physics.materials import PRESETS

        if self.steps < 1 or self.frame_every < 1 or self.steps % self.frame_every:
            raise ConfigError(f"nclaw_blob: steps ({self.steps}) must be a positive multiple of frame_every")
        if not 0 < self.spacing < 0.5:
            raise ConfigError(f"nclaw_blob: spacing must be in (0, 0.5) m, got {self.spacing}")
        if not self.bodies:
            raise ConfigError("nclaw_blob: bodies is empty; give at least one body")
        for b in self.bodies:
            if b.material not in PRESETS:
                raise ConfigError(f"nclaw_blob: unknown material {b.material!r}; choose from {', '.join(PRESETS)}")
            if b.shape not in BUILTIN_SHAPES and not mesh_path(b.shape).is_file():
                raise ConfigError(f"nclaw_blob: shape {b.shape!r} is not cube, sphere, torus, star, blob or a mesh")
            if not 0 < b.size < 1 or not b.density > 0:
                raise ConfigError(f"nclaw_blob: body size must be in (0, 1) m, density > 0: {b.size}, {b.density}")
            if b.density != _density(self, b.material):
                raise ConfigError(f"nclaw_blob: all {b.material} bodies must share one density")
        self.mpm_config()  # validates res, dt, wall

    def mpm_config(self):
        from meshsim.physics.mpm import MPMConfig

        return MPMConfig(res=self.res, dt=self.dt, gravity=tuple(self.gravity), wall=self.wall)


@dataclass
class Scene:
    """Initial particles of a scene: positions, velocities, mass, volume, material id and names."""

    x: np.ndarray
    v: np.ndarray
    mass: np.ndarray
    vol: np.ndarray
    material_id: np.ndarray
    materials: list[str]


def _sample(body: BodyConfig, spacing: float) -> np.ndarray:
    from meshsim.physics.mpm import sample_box, sample_mesh, sample_sphere

    if body.shape == "cube":
        return sample_box(body.center, body.size, spacing)
    if body.shape == "sphere":
        return sample_sphere(body.center, body.size / 2, spacing)
    return sample_mesh(mesh_path(body.shape), body.center, body.size, spacing)


def _density(cfg: MPMSceneConfig, material: str) -> float:
    return next(b.density for b in cfg.bodies if b.material == material)


def build_scene(cfg: MPMSceneConfig, seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    xs, vs, ids, names = [], [], [], []
    for body in cfg.bodies:
        x = _sample(body, cfg.spacing)
        lin, ang = np.asarray(body.velocity, float), np.asarray(body.angular_velocity, float)
        if cfg.random_velocity:
            d = rng.normal(size=3)
            lin = d / np.linalg.norm(d) * rng.uniform(0, 3)
            ang = rng.uniform(0, 3, 3)
        if body.material not in names:
            names.append(body.material)
        xs.append(x)
        vs.append(lin + np.cross(ang, x - x.mean(0)))
        ids.append(np.full(len(x), names.index(body.material)))
    x = np.concatenate(xs).astype(np.float32)
    if x.min() < 0 or x.max() > 1:
        raise ConfigError("nclaw_blob: a body leaves the unit box; move its center or shrink its size")
    vol = np.full(len(x), cfg.spacing**3, np.float32)
    density = np.concatenate([np.full(len(xb), b.density) for xb, b in zip(xs, cfg.bodies)])
    return Scene(x, np.concatenate(vs).astype(np.float32), (density * vol).astype(np.float32), vol,
                 np.concatenate(ids).astype(np.int32), names)


def scene_material(scene: Scene, laws: dict):
    """One material for all particles from {material name: law}; a MaterialMix when there are several."""
    from meshsim.physics.materials import MaterialMix

    if len(scene.materials) == 1:
        return laws[scene.materials[0]]
    return MaterialMix([laws[m] for m in scene.materials], torch.as_tensor(scene.material_id))


def rollout_scene(cfg: MPMSceneConfig, scene: Scene, material, record_state: bool = False):
    """Run the scene with `material` (no gradient): frames of positions [T+1, N, 3] (+ velocity, C, F)."""
    from meshsim.physics.mpm import DiffMPM, MPMState

    sim = DiffMPM(cfg.mpm_config(), scene.mass, scene.vol)
    state = MPMState.at_rest(scene.x, scene.v)
    frames = {"x": [state.x.numpy()]}
    if record_state:
        frames.update(v=[state.v.numpy()], C=[state.C.reshape(-1, 9).numpy()], F=[state.F.reshape(-1, 9).numpy()])
    with torch.no_grad():
        for _ in range(cfg.steps // cfg.frame_every):
            _, state = sim.rollout(state, material, cfg.frame_every, check_finite=True)
            frames["x"].append(state.x.numpy().copy())
            if record_state:
                frames["v"].append(state.v.numpy().copy())
                frames["C"].append(state.C.reshape(-1, 9).numpy().copy())
                frames["F"].append(state.F.reshape(-1, 9).numpy().copy())
    return {k: np.stack(v) for k, v in frames.items()}


def simulate(cfg: MPMSceneConfig, seed: int = 0):
    """Ground truth with the analytic law of each body's material -> Trajectory of particles."""
    from meshsim.datasets import Trajectory
    from meshsim.physics.materials import PRESETS, preset

    scene = build_scene(cfg, seed)
    material = scene_material(scene, {m: preset(m) for m in scene.materials})
    frames = rollout_scene(cfg, scene, material, record_state=cfg.store_state)
    fields = {k: frames[k] for k in ("v", "C", "F") if k in frames}
    if "v" in fields:
        fields["velocity"] = fields.pop("v")
    attrs = {
        "scenario": "nclaw_blob",
        "materials": ",".join(scene.materials),
        "laws": ",".join(PRESETS[m][0] for m in scene.materials),
        "grid_res": cfg.res,
        "mpm_dt": cfg.dt,
        "frame_every": cfg.frame_every,
        "spacing": cfg.spacing,
        "wall": cfg.wall,
        "gravity": np.asarray(cfg.gravity, np.float64),
        "seed": int(seed),
        "body_shapes": ",".join(b.shape for b in cfg.bodies),
        "material_density": np.asarray([_density(cfg, m) for m in scene.materials], np.float64),
        "scene_config": yaml.safe_dump(to_dict(cfg), sort_keys=False),
    }
    for m in scene.materials:
        for key, value in preset(m).params().items():
            attrs[f"{m}_{key}"] = float(value)
    n = len(scene.x)
    return Trajectory(
        cells=np.arange(n, dtype=np.int32)[:, None],
        mesh_pos=scene.x,
        node_type=np.zeros(n, np.int32),
        world_pos=frames["x"],
        dt=cfg.dt * cfg.frame_every,
        fields={"material_id": np.broadcast_to(scene.material_id.astype(np.float32), frames["x"].shape[:2]).copy(),
                **fields},
        attrs=attrs,
    )


def scene_config_from_attrs(attrs: dict) -> MPMSceneConfig:
    """The scene config stored in a trajectory written by `simulate`."""
    if "scene_config" not in attrs:
        raise ConfigError("trajectory has no scene_config attribute: generate it with `meshsim nclaw generate`")
    return from_dict(MPMSceneConfig, yaml.safe_load(attrs["scene_config"]), where="scene_config")


SCENARIO = Scenario("nclaw_blob", MPMSceneConfig, simulate,
                    "MPM particles (not FEM) of jelly/plasticine/sand/water: NCLaw's scene, made by "
                    "`meshsim nclaw generate --material M` (also accepted here)")
