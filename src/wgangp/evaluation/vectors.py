"""Vectors (``--dataset vectors``): the Fréchet distance and exact W1 between generated and real vectors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from wgangp.config import TrainConfig
from wgangp.evaluation.base import REFERENCE_SEED_OFFSET, DataKind, EvalRequest, Sampler

if TYPE_CHECKING:
    from wgangp.trainer import Trainer

__all__ = ["VectorKind"]


class VectorKind(DataKind):
    """Scored against a fixed set of ``max(batch_size, eval_samples)`` real vectors (all, if fewer)."""

    datasets = ("vectors",)

    def reference(self, config: TrainConfig, sampler: Sampler | None) -> Tensor:
        assert sampler is not None, "VectorKind needs the run's data sampler"
        n = max(config.batch_size, config.eval_samples)
        return sampler.reference(n, seed=config.seed + REFERENCE_SEED_OFFSET)

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        return self._scores(trainer, self.config.eval_samples)

    def evaluate_saved(self, trainer: Trainer, run_dir: Path, request: EvalRequest) -> dict[str, Any]:
        out = super().evaluate_saved(trainer, run_dir, request)
        # A reference set as large as the asked sample count (the run's own covers eval_samples).
        kind = VectorKind(self.config.replace(eval_samples=out["samples"]), self.sampler)
        return out | kind._scores(trainer, out["samples"])

    def _scores(self, trainer: Trainer, samples: int) -> dict[str, float]:
        from wgangp.metrics.features import frechet_distance
        from wgangp.metrics.toy import wasserstein1

        n = min(samples, self.real.shape[0])
        fake, real = self.fakes(trainer, n), self.real[:n]
        return {"fd": frechet_distance(fake, real), "w1": wasserstein1(fake, real)}
