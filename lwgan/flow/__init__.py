"""Transfer flows between posed meshes, condition maps, warping and UV unwrapping."""

from lwgan.flow.atlas import unwrap_to_atlas
from lwgan.flow.conditions import condition_map
from lwgan.flow.transfer import TransferFlow, locate_in_source, transfer_flow
from lwgan.flow.warp import grid_valid, resize_grid, warp

__all__ = ["unwrap_to_atlas", "condition_map", "TransferFlow", "locate_in_source", "transfer_flow", "grid_valid", "resize_grid", "warp"]
