"""The evaluation seam: what a kind of data knows — its real reference set, its metrics, its pictures.

A :class:`DataKind` subclass names the datasets it serves in ``datasets``; defining it registers it, and
:func:`~wgangp.evaluation.kind_for` finds it for a config. The run loop (metrics and pictures during
training), ``wgangp eval``, ``wgangp compare`` and the figures all go through the kind, so a new kind of
data (labels, text, sequences) is one new class in a new module of this package and no edit elsewhere.

Seeds are named here, so every consumer draws the same fixed latents and real points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import torch
from torch import Tensor

from wgangp.config import TrainConfig

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from wgangp.metrics.monitor import HeldOutMonitor
    from wgangp.trainer import Trainer

__all__ = [
    "EVAL_COMMAND_REAL_SEED",
    "GRID_SEED",
    "MONITOR_SEED_OFFSET",
    "REFERENCE_SEED_OFFSET",
    "DataKind",
    "EvalRequest",
    "ImageLog",
    "MetricSpec",
    "Sampler",
    "registered_kinds",
]

# The fixed real reference set of a run is drawn with config.seed + this; its fixed fakes with one more.
REFERENCE_SEED_OFFSET = 1_000_003
# The sample grid's latent batch: the same z at every step and in every run.
GRID_SEED = 7_777_777
# ``wgangp eval --seed S`` on toy data scores against real points drawn with this + S.
EVAL_COMMAND_REAL_SEED = 10_000
# The held-out monitor's fixed training subset is drawn with config.seed + this; its fakes' latents with
# one more; its bootstrap with config.seed.
MONITOR_SEED_OFFSET = 3_000_017

_KINDS: dict[str, type[DataKind]] = {}


@dataclass(frozen=True)
class MetricSpec:
    """One column of a metrics table: the key in the kind's metrics, its label, and which way is better."""

    key: str
    label: str
    better: Literal["higher", "lower"]


@dataclass(frozen=True)
class EvalRequest:
    """What ``wgangp eval`` asks of a saved run (``None``: the run's own setting)."""

    samples: int | None = None
    seed: int = 0
    metrics: Sequence[str] = ("classifier",)
    inception_weights: str | None = None


class Sampler(Protocol):
    """The part of a data sampler a kind reads: a fixed, seeded real reference set."""

    def reference(self, n: int, *, seed: int) -> Tensor: ...


class ImageLog(Protocol):
    """The part of the run logger a kind writes pictures to (TensorBoard's image and text tabs)."""

    def write_image(self, tag: str, image: Any, step: int) -> None: ...

    def write_text(self, tag: str, text: str, step: int) -> None: ...


def registered_kinds() -> dict[str, type[DataKind]]:
    """Dataset name → the kind serving it, for every kind defined so far."""
    return dict(_KINDS)


class DataKind:
    """What a kind of data knows. Subclasses set ``datasets`` and override what differs.

    ``metrics`` are a comparison table's columns, ``ranking`` the keys that decide whether one method
    beats another (most important first), ``claim`` says that in words; the ``embedded`` datasets (those
    that need no ``--data-path``) of a kind that ``compares`` are offered by ``wgangp compare``.
    """

    datasets: ClassVar[tuple[str, ...]] = ()
    embedded: ClassVar[tuple[str, ...]] = ()
    compares: ClassVar[bool] = False  # whether its metrics rank methods (``ranking`` is set)
    default_metrics: ClassVar[tuple[str, ...]] = ("classifier",)  # ``wgangp eval`` without --metric
    metrics: tuple[MetricSpec, ...] = ()
    ranking: tuple[MetricSpec, ...] = ()
    claim: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.datasets:
            _KINDS[name] = cls

    def __init__(
        self, config: TrainConfig, sampler: Sampler | None = None, cache_dir: Path | None = None
    ) -> None:
        self.config = config
        self.sampler = sampler
        self.cache_dir = cache_dir
        self.seed = config.seed + REFERENCE_SEED_OFFSET + 1  # the fixed fakes' latents
        self.real = self.reference(config, sampler)  # [M, ...] CPU: the fixed real reference

    def reference(self, config: TrainConfig, sampler: Sampler | None) -> Tensor:
        """The fixed real points: the probe's, and (toy, vectors) the metrics' reference set."""
        assert sampler is not None, f"{type(self).__name__} needs the run's data sampler"
        return sampler.reference(config.batch_size, seed=config.seed + REFERENCE_SEED_OFFSET)

    def probe_points(self, n: int) -> Tensor:
        """``n`` fixed real points at which mean ‖∇D(x̂)‖ is probed (for every loss, the same way)."""
        return self.real[:n]

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        """Metrics of the trainer's generator during training (fixed latents and reference set)."""
        return {}

    def evaluate_saved(self, trainer: Trainer, run_dir: Path, request: EvalRequest) -> dict[str, Any]:
        """``wgangp eval``: the asked metrics of a saved run's generator."""
        n = request.samples or self.config.eval_samples
        return {"step": trainer.step, "samples": n}

    def draw(self, trainer: Trainer, run_dir: Path, name: str, log: ImageLog | None = None) -> Path | None:
        """The run's picture ``name`` (periodic and final) under ``run_dir``; ``None`` if this kind has none."""
        return None

    def draw_panel(self, ax: Axes, trainer: Trainer, *, title: str) -> None:
        """The generator's samples on one matplotlib panel (``compare``'s samples figure)."""
        ax.set_axis_off()
        ax.set_title(title)

    def held_out_real(self) -> Tensor | None:
        """Real samples never trained on ``[M, ...]`` (CPU), for the held-out critic monitor; ``None``: none.

        By default the sampler's held-out rows (``monitor_holdout``, :meth:`ArraySampler.held_out`); a kind
        whose data come with their own validation split (text) returns that instead.
        """
        held_out = getattr(self.sampler, "held_out", None)
        return held_out() if callable(held_out) else None

    def monitor(self, trainer: Trainer) -> HeldOutMonitor | None:
        """The held-out critic monitor (§5.6) of this run, ``None`` while ``monitor_holdout`` is 0.

        At each call it scores a fixed training subset, the held-out set and one batch of fixed-latent
        fakes from the generator the critic trains against (not the EMA copy); it draws from none of the
        training streams (its own seeds, :data:`MONITOR_SEED_OFFSET`).
        """
        from wgangp.errors import UserError
        from wgangp.metrics.monitor import HeldOutMonitor

        config = self.config
        if not config.monitor_holdout:
            return None
        val = self.held_out_real()
        if val is None or self.sampler is None:
            raise UserError(f"dataset {config.dataset} has no held-out real data for monitor_holdout")
        n = config.monitor_samples or val.shape[0]
        train = self.sampler.reference(n, seed=config.seed + MONITOR_SEED_OFFSET)  # [≤ n, ...]
        seed = config.seed + MONITOR_SEED_OFFSET + 1
        return HeldOutMonitor(
            trainer.critic,
            train,
            val,
            lambda: trainer.sample(n, seed=seed, ema=False).cpu(),
            seed=config.seed,
            k=config.overfit_sigmas,
            patience=config.overfit_patience,
        )

    @torch.no_grad()
    def fakes(self, trainer: Trainer, n: int) -> Tensor:
        """``n`` samples from the fixed eval latents, on the CPU."""
        return trainer.sample(n, seed=self.seed).cpu()
