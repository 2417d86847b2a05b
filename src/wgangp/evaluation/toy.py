"""The 2-d toy sets: exact W1 for all; modes covered and the high-quality fraction for the mixtures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from wgangp.config import TrainConfig
from wgangp.data.toy import TOY_DATASETS, ToySampler, mode_centres
from wgangp.evaluation.base import (
    EVAL_COMMAND_REAL_SEED,
    REFERENCE_SEED_OFFSET,
    DataKind,
    EvalRequest,
    ImageLog,
    MetricSpec,
    Sampler,
)
from wgangp.metrics.toy import toy_metrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from wgangp.trainer import Trainer

__all__ = ["ToyKind"]

# Points per panel in compare's samples figure: a few hundred show the shape, thousands make PNGs heavy.
PANEL_POINTS = 500


class ToyKind(DataKind):
    """W1 and mode metrics of the generator on a fixed latent batch vs a fixed real set (n vs n)."""

    datasets = TOY_DATASETS
    embedded = TOY_DATASETS
    compares = True

    def __init__(
        self, config: TrainConfig, sampler: Sampler | None = None, cache_dir: Path | None = None
    ) -> None:
        super().__init__(config, sampler, cache_dir)
        w1 = MetricSpec("w1", "W1 ↓", "lower")
        if mode_centres(config.dataset) is None:
            self.metrics = (w1,)
            self.ranking = (w1,)
            self.claim = "WGAN-GP reaches a lower W1 than weight clipping"
        else:
            modes = MetricSpec("modes_covered", "modes covered ↑", "higher")
            quality = MetricSpec("high_quality_fraction", "high-quality fraction ↑", "higher")
            self.metrics = (w1, modes, quality)
            self.ranking = (modes, w1)
            self.claim = "WGAN-GP covers more modes than weight clipping (or as many, with a lower W1)"

    def reference(self, config: TrainConfig, sampler: Sampler | None) -> Tensor:
        n = config.eval_samples
        return ToySampler(config.dataset, n, seed=config.seed + REFERENCE_SEED_OFFSET).sample(n)

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        return toy_metrics(self.config.dataset, self.fakes(trainer, self.config.eval_samples), self.real)

    def evaluate_saved(self, trainer: Trainer, run_dir: Path, request: EvalRequest) -> dict[str, Any]:
        n = request.samples or self.config.eval_samples
        real = ToySampler(self.config.dataset, n, seed=EVAL_COMMAND_REAL_SEED + request.seed).sample(n)
        fake = trainer.sample(n, seed=request.seed).cpu()
        return super().evaluate_saved(trainer, run_dir, request) | toy_metrics(
            self.config.dataset, fake, real
        )

    def draw(self, trainer: Trainer, run_dir: Path, name: str, log: ImageLog | None = None) -> Path | None:
        from wgangp.pictures.plots import plot_toy

        path = run_dir / "plots" / f"{name}.png"
        title = f"{self.config.loss}, {self.config.dataset}, step {trainer.step}"
        plot_toy(path, self.real, self.fakes(trainer, self.config.eval_samples), trainer.critic, title=title)
        return path

    def draw_panel(self, ax: Axes, trainer: Trainer, *, title: str) -> None:
        from wgangp.pictures.plots import draw_toy

        n = min(self.config.eval_samples, PANEL_POINTS)
        fake, real = self.fakes(trainer, n), self.real[:n]
        draw_toy(ax, real, fake, trainer.critic, title=title, colorbar=False, legend=False, resolution=96)
