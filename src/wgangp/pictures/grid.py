"""Sample grids: generated images tiled into one PNG (no torchvision needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["image_grid", "save_grid", "to_uint8"]


def to_uint8(images: Tensor) -> np.ndarray:
    """Images in [−1, 1], ``[N, C, H, W]`` -> ``uint8 [N, H, W, C]`` (``round((x + 1)·127.5)``, clipped)."""
    x = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(images: Tensor, *, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile ``[N, C, H, W]`` images in [−1, 1] into one ``uint8 [rows·(H+p)+p, cols·(W+p)+p, C]`` array."""
    tiles = to_uint8(images)  # [N, H, W, C]
    n, h, w, c = tiles.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), 255, np.uint8)
    for i in range(n):
        top, left = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[top : top + h, left : left + w] = tiles[i]
    return grid


def save_grid(images: Tensor, path: str | Path, *, scale: int = 1, columns: int | None = None) -> Path:
    """Write :func:`image_grid` of ``images`` as a PNG, each pixel enlarged ``scale``× (nearest)."""
    from PIL import Image

    grid = image_grid(images, columns=columns)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path
