"""meshsim: learned physics simulation of flexible bodies.

Differentiable ground truth (Warp FEM and MLS-MPM), learned mesh simulators (HCMT, MeshGraphNets), neural
constitutive laws (NCLaw), and the tools around them (HDF5 trajectory store, viewer, exports).
Heavy modules (torch, warp) are imported by the subpackages that need them, never here.
"""

__version__ = "0.1.0"
