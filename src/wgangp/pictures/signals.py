"""A figure of real against generated 1-D signals: a few series of each, and their mean power spectra.

Built with matplotlib's object API on its own Agg canvas (never pyplot, so a user's interactive backend
is untouched); matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torch import Tensor

from wgangp.metrics.signals import as_series, mean_spectrum

__all__ = ["plot_series"]


def plot_series(
    path: str | os.PathLike[str],
    real: Tensor | np.ndarray,
    fake: Tensor | np.ndarray,
    *,
    count: int = 4,
    channel: int = 0,
    title: str = "",
) -> Path:
    """Write a PNG: ``count`` real and ``count`` generated series of ``channel``, and both mean spectra.

    Row 1: real series (the first ``count`` of ``real [N, C, T]``), row 2: generated ones (``fake``), each in
    its own panel with a shared value axis; row 3: the normalised mean power spectra of the whole sets
    (:func:`~wgangp.metrics.signals.mean_spectrum`) against frequency in cycles per step, log scale.
    Returns the path written (parent directories are created).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r, f = as_series(real, "real"), as_series(fake, "fake")
    if r.shape[1:] != f.shape[1:]:
        raise ValueError(f"real and fake series differ in [C, T]: {r.shape[1:]} vs {f.shape[1:]}")
    if not 0 <= channel < r.shape[1]:
        raise ValueError(f"channel must be in [0, {r.shape[1]}); got {channel}")
    if count < 1:
        raise ValueError(f"count must be ≥ 1; got {count}")
    columns = min(count, r.shape[0], f.shape[0])
    length = r.shape[2]
    steps = np.arange(length)
    low = min(r[:columns, channel].min(), f[:columns, channel].min())
    high = max(r[:columns, channel].max(), f[:columns, channel].max())
    pad = 0.05 * (high - low) if high > low else 1.0

    fig = Figure(figsize=(2.4 * columns, 6.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, columns)
    for row, (name, data, colour) in enumerate((("real", r, "tab:blue"), ("generated", f, "tab:orange"))):
        for i in range(columns):
            ax = fig.add_subplot(grid[row, i])
            ax.plot(steps, data[i, channel], color=colour, linewidth=1.0)
            ax.set_ylim(low - pad, high + pad)
            ax.set_title(f"{name} {i}", fontsize=9)
            ax.tick_params(labelsize=7)
    ax = fig.add_subplot(grid[2, :])
    freqs = np.arange(length // 2 + 1) / length
    for name, data, colour in (("real", r, "tab:blue"), ("generated", f, "tab:orange")):
        ax.semilogy(freqs, np.maximum(mean_spectrum(data)[channel], 1e-12), color=colour, label=name)
    ax.set_xlabel("frequency (cycles per step)")
    ax.set_ylabel("share of power")
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png")
    return target
