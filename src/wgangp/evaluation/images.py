"""Images: fixed-latent sample grids; classifier-feature FD/KID for labelled sets; Inception metrics on request.

Class-conditional runs (``conditioning`` acgan or projection): grids have one row per class, metrics are
of samples made for i.i.d. uniform labels, and labelled sets add the class consistency and per-class FD
(:mod:`wgangp.metrics.conditional`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

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
    from wgangp.metrics.conditional import ConditionalMetrics
    from wgangp.trainer import Trainer

__all__ = ["ImageKind", "LabelledImageKind", "class_rows"]

PANEL_IMAGES = 36  # images in one panel of compare's samples figure


class ImageKind(DataKind):
    """Unlabelled images (an image folder): sample grids, and the sliced Wasserstein distance on
    Laplacian-pyramid patches (Karras et al. 2018; :mod:`wgangp.metrics.swd`), which needs no weights:
    during training (``eval_every``, ``eval_samples`` images each way) and from ``wgangp eval``.

    ``wgangp eval --metric fid|kid|is --inception-weights FILE`` scores a saved run with Inception too.
    """

    datasets = tuple(d for d in IMAGE_DATASETS if d not in LABELLED_DATASETS)
    default_metrics = ("swd",)
    metrics: tuple[MetricSpec, ...] = (MetricSpec("swd_mean", "SWD ×10³ ↓", "lower"),)

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        return self._swd(self.fakes(trainer, self.config.eval_samples), self.config.eval_samples, seed=0)

    def _swd(self, fake: Tensor, n: int, *, seed: int) -> dict[str, float]:
        """SWD between ``fake`` and ``n`` fixed real images (seeded like the run's reference set)."""
        from wgangp.metrics.swd import sliced_wasserstein

        if self.sampler is None:
            raise UserError("SWD needs the run's image data (--data-path of the run)")
        real = self.sampler.reference(n, seed=self.config.seed + REFERENCE_SEED_OFFSET + seed)
        m = min(fake.shape[0], real.shape[0])  # a folder may hold fewer images than asked for
        return sliced_wasserstein(fake[:m].float(), real[:m].float(), seed=seed)

    def draw(self, trainer: Trainer, run_dir: Path, name: str, log: ImageLog | None = None) -> Path | None:
        from wgangp.pictures.grid import image_grid, save_grid

        columns = None
        if trainer.conditional:
            # One row per class, grid_samples // K fixed latents in each (the same z in every row).
            images, columns = class_rows(trainer, max(1, self.config.grid_samples // trainer.n_classes))
        else:
            images = trainer.sample(self.config.grid_samples, seed=GRID_SEED).cpu()  # [n, C, R, R]
        scale = max(1, 128 // images.shape[-1])  # small images enlarged so a grid is legible
        path = save_grid(images, run_dir / "samples" / f"{name}.png", scale=min(scale, 4), columns=columns)
        if log is not None:
            log.write_image("samples", image_grid(images, columns=columns), trainer.step)
        return path

    def draw_panel(self, ax: Axes, trainer: Trainer, *, title: str) -> None:
        from wgangp.pictures.grid import image_grid

        grid = image_grid(self.fakes(trainer, PANEL_IMAGES))
        ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", interpolation="nearest")
        super().draw_panel(ax, trainer, title=title)

    def evaluate_saved(self, trainer: Trainer, run_dir: Path, request: EvalRequest) -> dict[str, Any]:
        out = super().evaluate_saved(trainer, run_dir, request)
        n = out["samples"]
        fake, labels = trainer.sample_labelled(n, seed=request.seed)  # labels i.i.d. uniform if conditional
        fake = fake.cpu()
        if "swd" in request.metrics:
            out |= self._swd(fake, n, seed=request.seed)
        if "classifier" in request.metrics:
            from wgangp.metrics.images import classifier_metrics, conditional_metrics

            if labels is None:
                plain = classifier_metrics(self.config, cache_dir=run_dir, reference_samples=n)
                out |= plain(fake) | _code_purity(plain, trainer, fake, request.seed)
            else:
                scorer = conditional_metrics(
                    self.config, cache_dir=run_dir, reference_samples=n, n_classes=trainer.n_classes
                )
                out |= scorer.base(fake) | scorer(fake, labels)
        inception = [m for m in request.metrics if m not in ("classifier", "swd")]
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
    default_metrics = ("classifier",)
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
        if self.config.conditioning != "none":
            return self.conditional_scorer.base
        from wgangp.metrics.images import classifier_metrics

        return classifier_metrics(
            self.config, cache_dir=self.cache_dir, reference_samples=self.config.eval_samples
        )

    @functools.cached_property
    def conditional_scorer(self) -> ConditionalMetrics:
        """Class consistency and per-class FD on the same classifier and reference set (conditional runs)."""
        from wgangp.metrics.images import conditional_metrics

        return conditional_metrics(
            self.config,
            cache_dir=self.cache_dir,
            reference_samples=self.config.eval_samples,
            n_classes=self.config.n_classes,
        )

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        from wgangp.metrics.score import classifier_score

        if not trainer.conditional:
            images, labels = self.fakes(trainer, self.config.eval_samples), None
        else:
            # The fixed eval latents with i.i.d. uniform labels drawn after them from the same seed.
            images, labels = trainer.sample_labelled(self.config.eval_samples, seed=self.seed)
            images = images.cpu()
        # The classifier score exp E KL(p(y|x) ‖ p(y)) over all samples at once (one split: with a
        # thousand samples, ten splits would estimate each p(y) from too few).
        score, _ = classifier_score(self.scorer, images, splits=1)
        metrics = (
            self.scorer(images) | {"score": score} | _code_purity(self.scorer, trainer, images, self.seed)
        )
        return metrics if labels is None else metrics | self.conditional_scorer(images, labels)


def _code_purity(scorer: ClassifierMetrics, trainer: Trainer, images: Tensor, seed: int) -> dict[str, float]:
    """``code_purity`` and ``code_classes`` of a ``latent_codes`` run's samples (``{}`` for other runs)."""
    if not trainer.config.latent_codes:
        return {}
    from wgangp.metrics.conditional import code_purity

    _, probs = scorer.embed(images)
    return code_purity(probs.argmax(1), trainer.sample_codes(images.shape[0], seed=seed))


def code_rows(trainer: Trainer, columns: int, *, seed: int = GRID_SEED) -> tuple[Tensor, int]:
    """``columns`` samples of every latent code (``latent_codes`` runs), code by code, as :func:`class_rows`:
    ``[K·columns, ...]`` on the CPU, one z per column with its first K entries permuted to each code."""
    from wgangp.models.coded import with_code

    k = trainer.config.latent_codes
    probe = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(columns, trainer.config.latent_dim, generator=probe).repeat(k, 1)  # [K·columns, latent]
    codes = torch.arange(k).repeat_interleave(columns)  # [K·columns]
    return trainer.sample_from(with_code(z, codes, k)).cpu(), columns


def class_rows(trainer: Trainer, columns: int, *, seed: int = GRID_SEED) -> tuple[Tensor, int]:
    """``columns`` samples of every class, class by class (``[K·columns, C, R, R]``, CPU), for a grid with
    one row per class; the same latents in every row, so a column shows one z across the classes."""
    probe = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(columns, trainer.config.latent_dim, generator=probe)  # [columns, latent]
    labels = torch.arange(trainer.n_classes).repeat_interleave(columns)  # [K·columns]
    return trainer.sample_from(z.repeat(trainer.n_classes, 1), labels).cpu(), columns
