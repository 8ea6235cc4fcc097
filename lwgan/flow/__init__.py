"""Transfer flows between posed meshes, condition maps and warping."""

from lwgan.flow.conditions import condition_map
from lwgan.flow.transfer import TransferFlow, transfer_flow
from lwgan.flow.warp import grid_valid, resize_grid, warp

__all__ = ["condition_map", "TransferFlow", "transfer_flow", "grid_valid", "resize_grid", "warp"]
