"""Warp kernels exposed as torch ops (contact/radius search, fused edge attention)."""
