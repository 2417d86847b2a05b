"""Images: fixed-latent sample grids; classifier-feature FD/KID for labelled sets; Inception metrics on request."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wgangp.data.images import IMAGE_DATASETS, LABELLED_DATASETS
from wgangp.errors import UserError
from wgangp.evaluation.base import (
    GRID_SEED,
    REFERENCE_SEED_OFFSET,
    DataKind,
    EvalRequest,
    ImageLog,
    MetricSpec,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from wgangp.metrics.classifier import ClassifierMetrics
    from wgangp.trainer import Trainer

__all__ = ["ImageKind", "LabelledImageKind"]

PANEL_IMAGES = 36  # images in one panel of compare's samples figure


class ImageKind(DataKind):
    """Unlabelled images (an image folder): sample grids; no metric during training.

    ``wgangp eval --metric fid|kid|is --inception-weights FILE`` scores a saved run afterwards.
    """

    datasets = tuple(d for d in IMAGE_DATASETS if d not in LABELLED_DATASETS)

    def draw(self, trainer: Trainer, run_dir: Path, name: str, log: ImageLog | None = None) -> Path | None:
        from wgangp.pictures.grid import image_grid, save_grid

        images = trainer.sample(self.config.grid_samples, seed=GRID_SEED).cpu()  # [n, C, R, R]
        scale = max(1, 128 // images.shape[-1])  # small images enlarged so a grid is legible
        path = save_grid(images, run_dir / "samples" / f"{name}.png", scale=min(scale, 4))
        if log is not None:
            log.write_image("samples", image_grid(images), trainer.step)
        return path

    def draw_panel(self, ax: Axes, trainer: Trainer, *, title: str) -> None:
        from wgangp.pictures.grid import image_grid

        grid = image_grid(self.fakes(trainer, PANEL_IMAGES))
        ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", interpolation="nearest")
        super().draw_panel(ax, trainer, title=title)

    def evaluate_saved(self, trainer: Trainer, run_dir: Path, request: EvalRequest) -> dict[str, Any]:
        out = super().evaluate_saved(trainer, run_dir, request)
        n = out["samples"]
        fake = trainer.sample(n, seed=request.seed).cpu()
        if "classifier" in request.metrics:
            from wgangp.metrics.images import classifier_metrics

            out |= classifier_metrics(self.config, cache_dir=run_dir, reference_samples=n)(fake)
        inception = [m for m in request.metrics if m != "classifier"]
        if inception:
            from wgangp.metrics.inception import inception_metrics

            if self.sampler is None:
                raise UserError("Inception metrics need the run's image data")
            real = self.sampler.reference(n, seed=REFERENCE_SEED_OFFSET + request.seed)
            out |= inception_metrics(
                fake, real, weights=request.inception_weights, metrics=inception, device=trainer.device
            )
        return out


class LabelledImageKind(ImageKind):
    """Labelled images (digits, MNIST, CIFAR-10): Fréchet distance, KID, classes covered and the confident
    fraction in the features of a classifier trained on the real images (:mod:`wgangp.metrics.classifier`),
    trained once and cached in ``cache_dir`` (the run directory; compare's report directory).
    """

    datasets = LABELLED_DATASETS
    embedded = ("digits",)  # shipped by scikit-learn
    compares = True
    metrics = (
        MetricSpec("fd", "classifier FD ↓", "lower"),
        MetricSpec("kid", "classifier KID ↓", "lower"),
        MetricSpec("classes_covered", "classes covered ↑", "higher"),
        MetricSpec("score", "classifier score ↑", "higher"),
    )
    ranking = (MetricSpec("fd", "classifier FD ↓", "lower"),)
    claim = "WGAN-GP reaches a lower classifier-space Fréchet distance than weight clipping"

    @functools.cached_property
    def scorer(self) -> ClassifierMetrics:
        """The classifier and the real reference features, built on first use (``eval`` needs neither)."""
        from wgangp.metrics.images import classifier_metrics

        return classifier_metrics(
            self.config, cache_dir=self.cache_dir, reference_samples=self.config.eval_samples
        )

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        from wgangp.metrics.score import classifier_score

        fakes = self.fakes(trainer, self.config.eval_samples)
        # The classifier score exp E KL(p(y|x) ‖ p(y)) over all samples at once (one split: with a
        # thousand samples, ten splits would estimate each p(y) from too few).
        score, _ = classifier_score(self.scorer, fakes, splits=1)
        return self.scorer(fakes) | {"score": score}
