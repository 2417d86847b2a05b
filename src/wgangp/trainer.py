"""The trainer: one run's state and random streams, and Algorithm 1's iteration on them.

``Trainer.train_iteration`` calls the one update step (:mod:`wgangp.step`) for whichever path the config
and device select; the trainer itself adds what comes after an iteration (EMA, lr schedule, the step
count) and what a run needs around it (sampling, the gradient-norm probe, state dicts). The step
returns its stats as detached tensors (no host sync); the run loop in :mod:`wgangp.run.loop` decides when
to read them. Nothing here logs, plots or writes files.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from wgangp.config import TrainConfig
from wgangp.data import build_sampler, data_shape
from wgangp.distributed import Shard, broadcast_parameters, process_device
from wgangp.errors import UserError
from wgangp.models import build_models as _build_models
from wgangp.models.global_bn import local_batch_statistics, to_global_batchnorm
from wgangp.models.sampling import generate
from wgangp.penalty import check_critic, gradient_norms
from wgangp.step.faults import all_finite
from wgangp.step.optim import build_schedulers
from wgangp.step.paths import build_iteration, choose_step_path
from wgangp.step.state import TrainState
from wgangp.step.update import critic_update, generator_update

__all__ = ["PROBE_SEED_OFFSET", "Trainer", "build_models", "resolve_device"]

PROBE_SEED_OFFSET = 10_000  # the gradient-norm probe at step t draws from config.seed + this + t


def resolve_device(name: str) -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but CUDA is not available here (use --device cpu)")
    return device


def build_models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """The generator and critic for ``config`` and its data's shape, initialised from ``config.seed`` alone."""
    return _build_models(config, data_shape(config))


@torch.no_grad()
def _ema_update_(ema: nn.Module, module: nn.Module, decay: float) -> None:
    """``θ_ema ← decay·θ_ema + (1 − decay)·θ``; buffers (BatchNorm statistics) are copied."""
    torch._foreach_lerp_(list(ema.parameters()), list(module.parameters()), 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), module.buffers(), strict=True):
        ema_buffer.copy_(buffer)


class Trainer:
    """Holds one run's :class:`~wgangp.step.state.TrainState`, data sampler, EMA and schedules.

    Random streams are explicit: ``noise`` (z and the penalty's ε) and the data sampler each have their own
    seeded generator, so a run is a function of ``config.seed`` and, on CPU, bit-reproducible.

    With ``shard`` (data parallelism, ``wgangp.distributed``) every process draws the global batches from
    the same streams and updates on its rows, with gradients summed over processes.
    """

    def __init__(
        self, config: TrainConfig, *, device: torch.device | None = None, shard: Shard | None = None
    ) -> None:
        self.config = config
        self.shard = shard if shard is not None else Shard()
        self.device = (
            device if device is not None else resolve_device(process_device(config.device, self.shard))
        )
        generator, critic = (m.to(self.device) for m in build_models(config))
        if self.shard.distributed:
            broadcast_parameters([generator, critic])
            if config.sync_batchnorm:  # the same Parameters, before the optimizers and the EMA copy see them
                generator = to_global_batchnorm(generator)
        check_critic(critic)  # once here, so the hot path can skip the walk over modules
        # eager, fast-eager (mixed precision, lazy penalty, compile) or graph: see wgangp.step.paths.
        self.step_path, _ = choose_step_path(config, self.device, self.shard)
        self.state = TrainState.build(config, generator, critic, graph=self.step_path == "graph")
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False) if config.ema_decay > 0 else None
        self.schedulers = build_schedulers(config, (self.generator_opt, self.critic_opt))
        # The graph path copies host batches into its static buffer itself, without blocking the host.
        data_device = torch.device("cpu") if self.step_path == "graph" else self.device
        # Each process reads only its rows of every global batch (wgangp.distributed).
        self.data = build_sampler(config, data_device, self.shard.keep(config.batch_size))
        self.step = 0  # completed generator iterations
        self.skipped_updates = 0  # critic and generator updates dropped by ``skip_nonfinite``
        self._guard = self._skip_nonfinite if config.skip_nonfinite else None
        self.iteration = build_iteration(
            config, self.step_path, self.state, self.data, self.shard, self._guard
        )

    # The networks and optimizers live in ``self.state``, the one object every step path updates.
    @property
    def generator(self) -> nn.Module:
        return self.state.generator

    @generator.setter
    def generator(self, module: nn.Module) -> None:
        self.state.generator = module

    @property
    def critic(self) -> nn.Module:
        return self.state.critic

    @property
    def generator_opt(self) -> torch.optim.Optimizer:
        return self.state.generator_opt

    @generator_opt.setter
    def generator_opt(self, opt: torch.optim.Optimizer) -> None:
        self.state.generator_opt = opt

    @property
    def critic_opt(self) -> torch.optim.Optimizer:
        return self.state.critic_opt

    @critic_opt.setter
    def critic_opt(self, opt: torch.optim.Optimizer) -> None:
        self.state.critic_opt = opt

    @property
    def noise(self) -> torch.Generator:
        return self.state.noise

    def critic_step(self) -> dict[str, Tensor]:
        """One critic update on a fresh real batch and fresh z (Algorithm 1, lines 3–10), outside an iteration.

        The update :meth:`train_iteration` runs n_critic times; ``{}`` for an update ``skip_nonfinite`` dropped.
        """
        real = self.data()  # [n_r, ...]: this process's rows of [B, 2] toy, [B, C, R, R] images
        spec = self.iteration.spec
        return critic_update(self.state, spec, real, penalise=True, guard=self._guard)

    def generator_step(self) -> dict[str, Tensor]:
        """One generator update with the critic frozen (Algorithm 1, lines 11–12); ``{}`` if dropped."""
        # The paper's ResNet recipe updates G on twice the critic's batch (generator_batch_multiple).
        batch = self.config.batch_size * self.config.generator_batch_multiple
        return generator_update(self.state, self.iteration.spec, batch, self.device, guard=self._guard)

    def _scalers(self) -> tuple[torch.amp.GradScaler | None, torch.amp.GradScaler | None]:
        """fp16's loss scalers (generator, critic); ``None`` for the other precisions."""
        return self.state.generator_scaler, self.state.critic_scaler

    def _skip_nonfinite(self, loss: Tensor, opt: torch.optim.Optimizer) -> bool:
        """``skip_nonfinite``: count and drop an update whose loss or gradients are non-finite.

        Checked before the optimizer step, so a bad batch changes neither the weights nor Adam's moments;
        this costs one host sync per update, paid only by runs that opt in.
        """
        grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
        if all_finite([loss.detach(), *grads]):
            return False
        self.skipped_updates += 1
        return True

    def train_iteration(self) -> dict[str, Tensor]:
        """n_critic critic updates, then one generator update (:func:`wgangp.step.update.iteration`); then
        the EMA, the lr schedule and the step count. Critic stats are averaged over the n_critic updates.

        Skipped updates (``skip_nonfinite``) leave their stats out, so a step may lack some keys.
        """
        stats = self.iteration(self.step)
        if self.generator_ema is not None:
            _ema_update_(self.generator_ema, self.generator, self.config.ema_decay)
        for scheduler in self.schedulers:
            scheduler.step()
        self.step += 1
        return stats

    def probe_grad_norm(self, real: Tensor) -> Tensor:
        """Mean ‖∇D(x̂)‖ at interpolates between ``real`` and fresh fakes, for any loss (logging only).

        Uses its own random stream and leaves BatchNorm's running buffers alone, so probing never changes the
        training trajectory. Rank 0 alone probes: the generator normalises with the probe batch's own
        statistics (as in training, and as one process does), without a collective the others would miss.
        """
        seed = self.config.seed + PROBE_SEED_OFFSET + self.step
        probe = torch.Generator(device=self.device).manual_seed(seed)
        n = real.shape[0]
        with torch.no_grad(), local_batch_statistics(self.generator):
            z = torch.randn(n, self.config.latent_dim, generator=probe, device=self.device)
            fake = self.generator(z)
        eps = torch.rand((n,) + (1,) * (real.ndim - 1), generator=probe, device=self.device)
        points = torch.lerp(fake, real.to(self.device), eps).requires_grad_(True)
        (grads,) = torch.autograd.grad(self.critic(points).sum(), points)
        return gradient_norms(grads).mean()

    @torch.no_grad()
    def sample(self, n: int, *, seed: int, ema: bool = True) -> Tensor:
        """``n`` generated samples from latents seeded by ``seed`` (independent of the training stream).

        From the EMA generator when there is one, unless ``ema=False`` (the generator the critic trains
        against). With ``sample_batchnorm=batch`` the ``n`` samples are normalised in ``⌈n / batch_size⌉``
        near-equal batches, each by its own statistics.
        """
        probe = torch.Generator(device=self.device).manual_seed(seed)
        z = torch.randn(n, self.config.latent_dim, generator=probe, device=self.device)
        generator = self.generator_ema if self.generator_ema is not None and ema else self.generator
        mode = self.config.sample_batchnorm
        if mode == "running":
            return generate(generator, z, batchnorm=mode)
        # Batch statistics: batches of about the training batch's size, each normalised by its own
        # statistics, as in training (the official code samples 100 at a time); never one huge batch.
        parts = max(1, -(-n // self.config.batch_size))
        return torch.cat([generate(generator, chunk, batchnorm=mode) for chunk in z.tensor_split(parts)])

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizers, step, config and every RNG state."""
        return {
            "step": self.step,
            "skipped_updates": self.skipped_updates,
            "config": self.config.to_dict(),
            "generator": self.generator.state_dict(),
            "critic": self.critic.state_dict(),
            "generator_opt": self.generator_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "generator_ema": None if self.generator_ema is None else self.generator_ema.state_dict(),
            "schedulers": [s.state_dict() for s in self.schedulers],
            "scalers": [None if s is None else s.state_dict() for s in self._scalers()],
            "rng": {"noise": self.noise.get_state(), "data": self.data.state_dict()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.critic.load_state_dict(state["critic"])
        self.generator_opt.load_state_dict(state["generator_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(state["generator_ema"])
        for scheduler, saved in zip(self.schedulers, state["schedulers"], strict=True):
            scheduler.load_state_dict(saved)
        for scaler, saved_scaler in zip(self._scalers(), state.get("scalers", [None, None]), strict=True):
            if scaler is not None and saved_scaler is not None:
                scaler.load_state_dict(saved_scaler)
        self.noise.set_state(state["rng"]["noise"])
        self.data.load_state_dict(state["rng"]["data"])
        self.step = int(state["step"])
        self.skipped_updates = int(state.get("skipped_updates", 0))
        self.iteration.reset()  # captured graphs hold the replaced optimizer state's addresses
