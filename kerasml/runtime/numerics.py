"""Kept for the Core AI lowering's `numerics.same_pads`: the kernels moved to `kerasml.runtime.kernels`
(`same_pads` is `kernels.conv.same_pads`). New code imports from there."""

from kerasml.runtime.kernels.conv import same_pads

__all__ = ["same_pads"]
