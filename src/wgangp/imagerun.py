"""What a run does for image and vector data: fixed-latent sample grids and metrics against real data.

The toy datasets keep their own evaluator and plots (``run.ToyEvaluator``, ``plots.plot_toy``); these are
the counterparts the run loop uses for every other dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from wgangp.data import ArraySampler, is_image_dataset
from wgangp.data.images import LABELLED_DATASETS
from wgangp.grid import image_grid, save_grid

if TYPE_CHECKING:
    from wgangp.config import TrainConfig
    from wgangp.trainer import Trainer

__all__ = ["GRID_SEED", "DataEvaluator", "evaluate_run"]

GRID_SEED = 7_777_777  # the grid's latent batch: the same z at every step and in every run
REFERENCE_SEED = 1_000_003


class DataEvaluator:
    """Metrics and pictures of a generator trained on images (or vectors).

    - images with labels (digits, mnist, cifar10): classifier-feature Fréchet distance, KID, classes
      covered and confident fraction (:mod:`wgangp.metrics.classifier`), the classifier cached in the run;
    - vectors: the Fréchet distance and exact W1 between generated and real vectors;
    - unlabelled images (folder): no metric during training (``wgangp eval --metric fid`` afterwards).

    ``real`` is a fixed batch of real samples (for the gradient-norm probe of non-GP losses).
    """

    def __init__(self, config: TrainConfig, sampler: ArraySampler, run_dir: Path | None) -> None:
        self.config = config
        self.images = is_image_dataset(config.dataset)
        self.seed = config.seed + REFERENCE_SEED
        # Vectors are scored against real samples; images need only a batch for the gradient-norm probe.
        n = config.batch_size if self.images else max(config.batch_size, config.eval_samples)
        self.real = sampler.reference(n, seed=self.seed)  # [M, ...] on the CPU
        self._metrics: Any = None
        if config.dataset in LABELLED_DATASETS:
            from wgangp.metrics.images import classifier_metrics

            self._metrics = classifier_metrics(
                config, cache_dir=run_dir, reference_samples=config.eval_samples
            )

    @property
    def accuracy(self) -> float | None:
        return None if self._metrics is None else self._metrics.accuracy

    def __call__(self, trainer: Trainer) -> dict[str, float]:
        if self._metrics is not None:
            return self._metrics(trainer.sample(self.config.eval_samples, seed=self.seed + 1))
        if not self.images:
            from wgangp.metrics.features import frechet_distance
            from wgangp.metrics.toy import wasserstein1

            n = min(self.config.eval_samples, self.real.shape[0])
            fake = trainer.sample(n, seed=self.seed + 1).cpu()
            return {"fd": frechet_distance(fake, self.real[:n]), "w1": wasserstein1(fake, self.real[:n])}
        return {}

    def grid(self, trainer: Trainer) -> Tensor:
        """The fixed latent batch's images ``[grid_samples, C, R, R]`` (CPU)."""
        return trainer.sample(self.config.grid_samples, seed=GRID_SEED).cpu()

    def draw(self, trainer: Trainer, path: Path, log: Any = None) -> Path | None:
        """Save the grid PNG (images only) and mirror it to TensorBoard through ``log``."""
        if not self.images:
            return None
        images = self.grid(trainer)
        scale = max(1, 128 // images.shape[-1])  # small images enlarged so a grid is legible
        save_grid(images, path, scale=min(scale, 4))
        if log is not None:
            log.write_image("samples", image_grid(images), trainer.step)
        return path


def evaluate_run(
    trainer: Trainer,
    run_dir: Path,
    *,
    metrics: list[str],
    samples: int | None = None,
    seed: int = 0,
    inception_weights: str | None = None,
) -> dict[str, Any]:
    """``wgangp eval`` for a non-toy run: the asked metrics of ``samples`` generated vs real samples."""
    from wgangp.errors import UserError

    config = trainer.config
    n = samples or config.eval_samples
    if not is_image_dataset(config.dataset):
        config = config.replace(eval_samples=n)
        evaluator = DataEvaluator(config, trainer.data, None)  # type: ignore[arg-type]
        return {"step": trainer.step, "samples": n, **evaluator(trainer)}
    out: dict[str, Any] = {"step": trainer.step, "samples": n}
    fake = trainer.sample(n, seed=seed).cpu()
    if "classifier" in metrics:
        from wgangp.metrics.images import classifier_metrics

        scorer = classifier_metrics(config, cache_dir=run_dir, reference_samples=n)
        out |= scorer(fake)
    inception = [m for m in metrics if m != "classifier"]
    if inception:
        from wgangp.metrics.inception import inception_metrics

        sampler = trainer.data
        if not isinstance(sampler, ArraySampler):
            raise UserError("Inception metrics are for image runs")
        real = sampler.reference(n, seed=REFERENCE_SEED + seed)
        out |= inception_metrics(
            fake, real, weights=inception_weights, metrics=inception, device=trainer.device
        )
    return out
