"""Algorithm 1 of WGAN-GP (and the baselines) as step functions over a generator, a critic and a sampler.

The step functions return their stats as detached tensors (no host sync); the run loop in ``run.py``
decides when to read them. Nothing here logs, plots or writes files.
"""

from __future__ import annotations

import copy
from typing import Any, Generic, TypeVar, cast

import torch
from torch import Tensor, nn

from wgangp.checkpoint import CHECKPOINT_FORMAT
from wgangp.config import TrainConfig
from wgangp.data import build_sampler, data_shape
from wgangp.distributed import Shard, broadcast_parameters, process_device
from wgangp.errors import UserError
from wgangp.fast.paths import build_fast_iteration, build_optimizer, choose_step_path
from wgangp.fast.step import Networks, StepSpec, critic_update, generator_update
from wgangp.faults import all_finite
from wgangp.models import build_models as _build_models
from wgangp.models.global_bn import local_batch_statistics, to_global_batchnorm
from wgangp.penalty import check_critic, gradient_norms

__all__ = ["CHECKPOINT_FORMAT", "Trainer", "build_models", "resolve_device"]

T = TypeVar("T")


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


def _ema_copy(module: nn.Module) -> nn.Module:
    ema = copy.deepcopy(module).requires_grad_(False)
    return ema


@torch.no_grad()
def _ema_update_(ema: nn.Module, module: nn.Module, decay: float) -> None:
    """``θ_ema ← decay·θ_ema + (1 − decay)·θ``; buffers (BatchNorm statistics) are copied."""
    torch._foreach_lerp_(list(ema.parameters()), list(module.parameters()), 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), module.buffers(), strict=True):
        ema_buffer.copy_(buffer)


def _optimizer(config: TrainConfig, params: Any, lr: float) -> torch.optim.Optimizer:
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=(config.beta1, config.beta2))


class _InNets(Generic[T]):
    """A ``Trainer`` attribute that lives in ``trainer.nets``: one home for what every step path updates."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, trainer: Any, owner: type | None = None) -> T:
        return cast("T", getattr(trainer.nets, self.name))

    def __set__(self, trainer: Any, value: T) -> None:
        setattr(trainer.nets, self.name, value)


class Trainer:
    """Holds the models, optimizers and random streams of one run and performs Algorithm 1's updates.

    Random streams are explicit: ``noise`` (z and the penalty's ε) and the data sampler each have their own
    seeded generator, so a run is a function of ``config.seed`` and, on CPU, bit-reproducible.

    With ``shard`` (data parallelism, ``wgangp.distributed``) every process draws the global batches from
    the same streams and updates on its rows, with gradients summed over processes.
    """

    # The networks and optimizers: attributes of ``self.nets`` (replacing one here replaces it there).
    generator: _InNets[nn.Module] = _InNets()
    critic: _InNets[nn.Module] = _InNets()
    generator_opt: _InNets[torch.optim.Optimizer] = _InNets()
    critic_opt: _InNets[torch.optim.Optimizer] = _InNets()

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
        # eager (the fp32 step below), fast-eager (mixed precision, lazy penalty) or graph: see wgangp.fast.
        self.step_path, _ = choose_step_path(config, self.device, self.shard)
        if self.step_path == "eager":
            generator_opt = _optimizer(config, generator.parameters(), config.lr_generator)
            critic_opt = _optimizer(config, critic.parameters(), config.lr_critic)
        else:
            generator_opt, critic_opt = (
                build_optimizer(
                    config, net.parameters(), lr, path=self.step_path, device=self.device, regularised=reg
                )
                for net, lr, reg in (
                    (generator, config.lr_generator, False),
                    (critic, config.lr_critic, True),
                )
            )
        self.generator_ema = _ema_copy(generator) if config.ema_decay > 0 else None
        # Linear decay to 0 over the run, stepped once per generator iteration (the paper's ResNet recipe).
        self.schedulers = [
            torch.optim.lr_scheduler.LambdaLR(opt, lambda it: max(0.0, 1.0 - it / config.steps))
            for opt in (generator_opt, critic_opt)
            if config.lr_decay == "linear"
        ]
        self.noise = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        # The graph path copies host batches into its static buffer itself, without blocking the host.
        data_device = torch.device("cpu") if self.step_path == "graph" else self.device
        # Each process reads only its rows of every global batch (wgangp.distributed).
        self.data = build_sampler(config, data_device, self.shard.keep(config.batch_size))
        self.step = 0  # completed generator iterations
        self.skipped_updates = 0  # critic and generator updates dropped by ``skip_nonfinite``
        # What every step path updates; self.generator, .critic and their optimizers read it (_InNets).
        self.nets = Networks.with_scalers(
            generator, critic, generator_opt, critic_opt, self.noise, config.precision
        )
        self.spec = StepSpec.from_config(config, shard=self.shard)  # the eager steps' settings
        self._guard = self._skip_nonfinite if config.skip_nonfinite else None
        self.fast = build_fast_iteration(config, self.step_path, self.nets, self.data, self.shard)

    def _scalers(self) -> tuple[torch.amp.GradScaler | None, torch.amp.GradScaler | None]:
        """fp16's loss scalers (generator, critic); ``None`` for the other precisions."""
        return self.nets.generator_scaler, self.nets.critic_scaler

    def latents(self, n: int) -> Tensor:
        return torch.randn(n, self.config.latent_dim, generator=self.noise, device=self.device)

    def critic_step(self) -> dict[str, Tensor]:
        """One critic update on a fresh real batch and fresh z (Algorithm 1, lines 3–10).

        The same update as the fast paths' (``wgangp.fast.step.critic_update``), in fp32, one batch at a
        time, with the ``skip_nonfinite`` check between backward and step. Returns ``{}`` for a dropped
        update.
        """
        real = self.data()  # [n_r, ...]: this process's rows of [B, 2] toy, [B, C, R, R] images
        return critic_update(self.nets, self.spec, real, penalise=True, guard=self._guard)

    def generator_step(self) -> dict[str, Tensor]:
        """One generator update with the critic frozen (Algorithm 1, lines 11–12); ``{}`` if dropped."""
        # The paper's ResNet recipe updates G on twice the critic's batch (generator_batch_multiple).
        batch = self.config.batch_size * self.config.generator_batch_multiple
        return generator_update(self.nets, self.spec, batch, self.device, guard=self._guard)

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
        """n_critic critic updates, then one generator update; critic stats are averaged over the n_critic.

        Skipped updates (``skip_nonfinite``) leave their stats out, so a step may lack some keys.
        """
        if self.fast is not None:
            stats = self.fast(self.step)
        else:
            totals: dict[str, Tensor] = {}
            applied = 0
            for _ in range(self.config.n_critic):
                critic_stats = self.critic_step()
                applied += bool(critic_stats)
                for key, value in critic_stats.items():
                    totals[key] = totals[key] + value if key in totals else value
            stats = {key: value / applied for key, value in totals.items()}
            stats.update(self.generator_step())
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
        probe = torch.Generator(device=self.device).manual_seed(self.config.seed + 10_000 + self.step)
        n = real.shape[0]
        with torch.no_grad(), local_batch_statistics(self.generator):
            z = torch.randn(n, self.config.latent_dim, generator=probe, device=self.device)
            fake = self.generator(z)
        eps = torch.rand((n,) + (1,) * (real.ndim - 1), generator=probe, device=self.device)
        points = torch.lerp(fake, real.to(self.device), eps).requires_grad_(True)
        (grads,) = torch.autograd.grad(self.critic(points).sum(), points)
        return gradient_norms(grads).mean()

    @torch.no_grad()
    def sample(self, n: int, *, seed: int) -> Tensor:
        """``n`` generated samples from latents seeded by ``seed`` (independent of the training stream)."""
        probe = torch.Generator(device=self.device).manual_seed(seed)
        z = torch.randn(n, self.config.latent_dim, generator=probe, device=self.device)
        generator = self.generator_ema if self.generator_ema is not None else self.generator
        was_training = generator.training
        generator.eval()
        out = generator(z)
        generator.train(was_training)
        return out

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizers, step, config and every RNG state."""
        return {
            "format_version": CHECKPOINT_FORMAT,
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
        if self.fast is not None:
            self.fast.reset()  # captured graphs hold the replaced optimizer state's addresses
