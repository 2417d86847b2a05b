"""The settings of one update step, derived from a :class:`~wgangp.config.TrainConfig` and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wgangp.config import TrainConfig
from wgangp.distributed import Shard
from wgangp.losses import LossName
from wgangp.penalty import PenaltyKind, PenaltyPoints, ScoreMap
from wgangp.step.amp import Precision

__all__ = ["StepSpec"]


@dataclass(frozen=True)
class StepSpec:
    """The parts of a ``TrainConfig`` that define one iteration's arithmetic (meanings: the config's fields).

    No defaults of its own: build it with :meth:`from_config`, so every value has one home, the config.
    """

    loss: LossName
    penalty_weight: float
    penalty_kind: PenaltyKind
    penalty_target: float
    penalty_at: PenaltyPoints
    penalty_fraction: float
    clip_value: float
    n_critic: int
    penalty_every: int
    precision: Precision
    latent_dim: int
    compile: bool  # torch.compile the penalised critic objective (``update.compiled_objective``)
    batch_size: int  # the global batch B (each process holds its rows of it)
    generator_batch_multiple: int  # the generator step's batch is B × this (paper ResNet: 2)
    autocast_cache: bool  # False under CUDA-graph capture
    shard: Shard  # this process's rows of every global batch (wgangp.distributed)
    penalty_score_map: ScoreMap  # critics with score maps [N, ...] (config.penalty_score_map)
    conditioning: Literal["none", "acgan", "projection"]
    n_classes: int  # K of a conditional run (resolved from the data when the config says 0); 0 otherwise
    acgan_scale: float
    acgan_scale_g: float
    latent_codes: int  # K of InfoGAN's categorical code c(z) (``wgangp.models.coded``); 0 = off
    info_scale: float  # λ_I of CE(Q(G(z)), c(z)) in both losses

    @property
    def conditional(self) -> bool:
        return self.conditioning != "none"

    @property
    def info(self) -> bool:
        """Whether both losses carry InfoGAN's code term ``λ_I · CE(Q(G(z)), c(z))``."""
        return self.latent_codes > 0 and self.info_scale > 0

    # A BatchNorm critic (critic_norm=batch, penalty-free losses only) scores real and fake in two forwards,
    # as the official code, so each batch is normalised with its own statistics.
    separate_critic_forwards: bool

    @classmethod
    def from_config(
        cls,
        config: TrainConfig,
        *,
        autocast_cache: bool = True,
        shard: Shard | None = None,
        n_classes: int | None = None,
    ) -> StepSpec:
        """``n_classes``: the run's K when the config leaves it to the data (``Trainer`` resolves it)."""
        return cls(
            loss=config.loss,
            penalty_weight=config.penalty_weight,
            penalty_kind=config.penalty_kind,
            penalty_target=config.penalty_target,
            penalty_at=config.penalty_at,
            penalty_fraction=config.penalty_fraction,
            clip_value=config.clip_value,
            n_critic=config.n_critic,
            penalty_every=config.penalty_every,
            precision=config.precision,
            latent_dim=config.latent_dim,
            # fp16's GradScaler recipe runs eagerly (``paths.choose_step_path`` warns).
            compile=config.compile and config.precision != "fp16",
            batch_size=config.batch_size,
            generator_batch_multiple=config.generator_batch_multiple,
            autocast_cache=autocast_cache,
            shard=shard if shard is not None else Shard(),
            penalty_score_map=config.penalty_score_map,
            conditioning=config.conditioning,
            n_classes=(n_classes if n_classes is not None else config.n_classes)
            if config.conditioning != "none"
            else 0,
            acgan_scale=config.acgan_scale,
            acgan_scale_g=config.acgan_scale_g,
            latent_codes=config.latent_codes,
            info_scale=config.info_scale,
            separate_critic_forwards=config.critic_norm == "batch",
        )
