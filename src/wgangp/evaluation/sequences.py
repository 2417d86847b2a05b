"""1-D signals (``--dataset sequences``): value and spectral W1 in the data's units, with their floor; plots.

Scored in the data's units (samples and real series de-standardised with the run's saved statistics):
``value_w1`` (per-channel W1 of all values) and ``spectral_w1`` (W1 over frequency between normalised mean
power spectra, :mod:`wgangp.metrics.signals`), both channel means, of ``eval_samples`` generated series
against all training series. The floor (``value_w1_floor``, ``spectral_w1_floor``) is the same pair for
the held-out series (up to ``eval_samples``) against the training ones. Pictures: real vs generated series
and mean spectra in ``plots/<step>.png`` (and TensorBoard's image tab).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from wgangp.config import TrainConfig
from wgangp.data import SeriesFormat, SeriesSampler
from wgangp.evaluation.base import GRID_SEED, DataKind, EvalRequest, ImageLog, MetricSpec, Sampler
from wgangp.metrics.signals import signal_metrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from wgangp.trainer import Trainer

__all__ = ["SeriesKind", "generated_series"]

PLOT_SERIES = 4  # series of each set in a picture
PANEL_SERIES = 3  # generated series in one panel of compare's samples figure


def generated_series(trainer: Trainer, n: int, *, seed: int) -> Tensor:
    """``n`` generated series ``[n, C, T]`` in the data's units (de-standardised), on the CPU."""
    fmt = trainer.codec
    if not isinstance(fmt, SeriesFormat):
        raise ValueError(f"a {trainer.config.dataset} run has no series format")
    return fmt.to_units(trainer.sample(n, seed=seed).float().cpu())


class SeriesKind(DataKind):
    """Value and spectral W1 of generated against training series, with the held-out floor."""

    datasets = ("sequences",)
    metrics = (
        MetricSpec("spectral_w1", "spectral W1 ↓", "lower"),
        MetricSpec("value_w1", "value W1 ↓", "lower"),
    )
    ranking = metrics
    claim = "WGAN-GP reaches a lower spectral W1 than weight clipping"

    def __init__(
        self, config: TrainConfig, sampler: Sampler | None = None, cache_dir: Path | None = None
    ) -> None:
        if not isinstance(sampler, SeriesSampler):
            raise TypeError("SeriesKind needs the run's SeriesSampler")
        series = sampler.series
        super().__init__(config, sampler, cache_dir)
        units = (lambda x: x) if series.stats is None else series.stats.destandardize
        self.training = units(series.train)  # [N, C, T] in the data's units
        self.held = units(series.held_out)

    @functools.cached_property
    def floor(self) -> dict[str, float]:
        """The held-out series (up to ``eval_samples``) against the training ones."""
        held = self.held[: self.config.eval_samples]
        if held.shape[0] == 0:
            return {}
        return {f"{k}_floor": v for k, v in signal_metrics(held, self.training).items()}

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        return self._scores(trainer, self.config.eval_samples, self.seed)

    def evaluate_saved(self, trainer: Trainer, run_dir: Path, request: EvalRequest) -> dict[str, Any]:
        out = super().evaluate_saved(trainer, run_dir, request)
        kind = SeriesKind(self.config.replace(eval_samples=out["samples"]), self.sampler)
        return out | kind._scores(trainer, out["samples"], request.seed)

    def _scores(self, trainer: Trainer, n: int, seed: int) -> dict[str, float]:
        return signal_metrics(generated_series(trainer, n, seed=seed), self.training) | self.floor

    def draw(self, trainer: Trainer, run_dir: Path, name: str, log: ImageLog | None = None) -> Path | None:
        from wgangp.pictures.signals import plot_series

        fake = generated_series(trainer, max(PLOT_SERIES, self.config.eval_samples), seed=GRID_SEED)
        title = f"{self.config.loss}, sequences, step {trainer.step}"
        path = plot_series(
            run_dir / "plots" / f"{name}.png", self.training, fake, count=PLOT_SERIES, title=title
        )
        if log is not None:
            from matplotlib.image import imread

            log.write_image("samples", (imread(path)[..., :3] * 255).round().astype("uint8"), trainer.step)
        return path

    def draw_panel(self, ax: Axes, trainer: Trainer, *, title: str) -> None:
        fake = generated_series(trainer, PANEL_SERIES, seed=self.seed)[:, 0]  # [n, T], channel 0
        real = self.training[:PANEL_SERIES, 0]
        for i in range(PANEL_SERIES):
            ax.plot(real[i].numpy(), color="0.7", linewidth=0.8, label="real" if i == 0 else None)
            ax.plot(fake[i].numpy(), color="tab:orange", linewidth=1.0, label="generated" if i == 0 else None)
        ax.legend(fontsize="x-small")
        ax.set_title(title)
        ax.tick_params(labelsize="x-small")
