"""Pictures of a run: the paper's Fig. 1a view of a 2-d critic, and training curves.

Figures are built with matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``), never
through ``pyplot``: nothing is registered in pyplot's global figure list, so nothing can leak, and the
user's interactive backend is left untouched. matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["critic_surface", "draw_toy", "new_figure", "plot_curves", "plot_toy", "save_figure"]

# Evaluate the grid in chunks so a fine grid does not need one huge activation tensor.
_GRID_CHUNK = 65_536


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure on its own Agg canvas (never registered with pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as a PNG, creating parent directories."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png")


def _to_numpy_points(x: Tensor | np.ndarray, what: str) -> np.ndarray:
    arr = x.detach().float().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} must be [N, 2] points, got shape {tuple(arr.shape)}")
    return arr


def critic_surface(
    critic: nn.Module,
    *,
    extent: float = 3.0,
    resolution: int = 128,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The critic's value ``D(x, y)`` on a ``resolution × resolution`` grid over ``[−extent, extent]²``.

    As the paper's Fig. 1a and ``generate_image`` in ``gan_toy.py`` (128 × 128 over ``[−3, 3]²``).
    The critic runs in eval mode under ``torch.no_grad()``; every submodule's train/eval flag is restored.

    Args:
        critic: maps ``[N, 2]`` to ``[N]`` or ``[N, 1]``.
        extent: half-width of the square.
        resolution: grid points per axis (≥ 2).
        device: where to evaluate; default the device of the critic's first parameter (CPU if none).

    Returns:
        ``(xs [R], ys [R], values [R, R])`` with ``values[i, j] = D(xs[j], ys[i])`` — rows follow y, the
        layout ``matplotlib``'s ``contour(xs, ys, values)`` expects. ``xs == ys``, float32.
    """
    if not extent > 0:
        raise ValueError(f"extent must be > 0, got {extent!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    first = next(critic.parameters(), None)
    if device is None:
        device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32

    axis = torch.linspace(-extent, extent, resolution, dtype=torch.float32)  # [R]
    grid_y, grid_x = torch.meshgrid(axis, axis, indexing="ij")  # [R, R] each, rows follow y
    points = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)  # [R·R, 2]

    modes = [m.training for m in critic.modules()]
    critic.eval()
    try:
        with torch.no_grad():
            chunks = []
            for chunk in points.split(_GRID_CHUNK):
                out = critic(chunk.to(device=device, dtype=dtype))
                if out.numel() != chunk.shape[0]:
                    raise ValueError(f"critic must return one value per point, got shape {tuple(out.shape)}")
                chunks.append(out.reshape(-1).float().cpu())
            values = torch.cat(chunks).reshape(resolution, resolution)  # [R, R]
    finally:
        for module, mode in zip(critic.modules(), modes, strict=True):
            module.training = mode
    xs = axis.numpy()
    return xs, xs.copy(), values.numpy()


def plot_toy(
    path: str | os.PathLike[str],
    real: Tensor | np.ndarray | None,
    fake: Tensor | np.ndarray,
    critic: nn.Module | None = None,
    *,
    title: str = "",
    extent: float = 3.0,
    resolution: int = 128,
) -> None:
    """Write the paper's Fig. 1a view as a PNG: critic value contours, real (orange) and generated (green) points.

    Args:
        path: PNG file to write; parent directories are created.
        real: ``[N, 2]`` data points, or ``None`` to draw generated points only.
        fake: ``[M, 2]`` generated points.
        critic: if given, its value surface (:func:`critic_surface`) is drawn underneath.
        title: figure title.
        extent: axes limits ``±extent`` (also the surface's extent).
        resolution: surface grid points per axis.
    """
    fig = new_figure(5.5, 5.0)
    draw_toy(fig.add_subplot(), real, fake, critic, title=title, extent=extent, resolution=resolution)
    save_figure(fig, path)


def draw_toy(
    ax: Axes,
    real: Tensor | np.ndarray | None,
    fake: Tensor | np.ndarray,
    critic: nn.Module | None = None,
    *,
    title: str = "",
    extent: float = 3.0,
    resolution: int = 128,
    colorbar: bool = True,
    legend: bool = True,
) -> None:
    """Draw :func:`plot_toy`'s picture on ``ax`` (for figures with several panels); arguments as there."""
    real_np = None if real is None else _to_numpy_points(real, "real")
    fake_np = _to_numpy_points(fake, "fake")
    if critic is not None:
        xs, ys, values = critic_surface(critic, extent=extent, resolution=resolution)
        filled = ax.contourf(xs, ys, values, levels=20, cmap="viridis", alpha=0.45)
        ax.contour(xs, ys, values, levels=20, colors="k", linewidths=0.4, alpha=0.6)
        if colorbar:
            ax.figure.colorbar(filled, ax=ax, shrink=0.8, label="critic value D(x)")
    if real_np is not None:
        ax.scatter(real_np[:, 0], real_np[:, 1], c="orange", marker="+", s=20, linewidths=0.8, label="real")
    ax.scatter(fake_np[:, 0], fake_np[:, 1], c="green", marker="+", s=20, linewidths=0.8, label="generated")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    if legend:
        ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)


def plot_curves(
    path: str | os.PathLike[str],
    rows: list[dict[str, float]],
    *,
    keys: Sequence[str],
    overlays: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Write training curves as a PNG: one small panel per key, value against ``row["step"]``.

    Keys that appear in no row (with a ``"step"``) are skipped; rows without ``"step"`` are ignored.
    With nothing to draw, the PNG holds a single panel saying so, so that a plot early in a run never fails.

    Args:
        path: PNG file to write; parent directories are created.
        rows: logged stats, e.g. the lines of a ``stats.jsonl``.
        keys: which stats to draw, in panel order.
        overlays: after those, one panel per title drawing its keys together, each with a ±1 SE band
            where rows hold ``key + "_se"`` (the held-out monitor's train and held-out estimates).
    """
    stepped = [row for row in rows if "step" in row]
    present = [key for key in dict.fromkeys(keys) if any(key in row for row in stepped)]
    shared = {
        title: [key for key in group if any(key in row for row in stepped)]
        for title, group in (overlays or {}).items()
    }
    shared = {title: group for title, group in shared.items() if group}
    panels = len(present) + len(shared)
    ncols = min(3, max(1, panels))
    nrows = max(1, math.ceil(panels / ncols))
    fig = new_figure(3.6 * ncols, 2.6 * nrows)
    if not panels:
        ax = fig.add_subplot()
        message = "no data yet for: " + ", ".join(keys)
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    for index, key in enumerate(present):
        ax = fig.add_subplot(nrows, ncols, index + 1)
        points = [(float(row["step"]), float(row[key])) for row in stepped if key in row]
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, linewidth=1.0, marker="o" if len(points) == 1 else None, markersize=4)
        ax.set_title(key, fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    for index, (title, group) in enumerate(shared.items(), start=len(present)):
        ax = fig.add_subplot(nrows, ncols, index + 1)
        for key in group:
            with_key = [row for row in stepped if key in row]
            steps_np = np.array([float(row["step"]) for row in with_key])
            values_np = np.array([float(row[key]) for row in with_key])
            ax.plot(steps_np, values_np, linewidth=1.0, label=key)
            if all(f"{key}_se" in row for row in with_key):
                se = np.array([float(row[f"{key}_se"]) for row in with_key])
                ax.fill_between(steps_np, values_np - se, values_np + se, alpha=0.25)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    save_figure(fig, path)
