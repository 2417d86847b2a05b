"""The trainer: one run's state and random streams, and Algorithm 1's iteration on them.

``Trainer.train_iteration`` calls the one update step (:mod:`wgangp.step`) for whichever path the config
and device select; the trainer itself adds what comes after an iteration (EMA, lr schedule, the step
count) and what a run needs around it (sampling, the gradient-norm probe, state dicts). The step
returns its stats as detached tensors (no host sync); the run loop in :mod:`wgangp.run.loop` decides when
to read them. Nothing here logs, plots or writes files.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import torch
from torch import Tensor, nn

from wgangp.config import TrainConfig
from wgangp.data import ArraySampler, DataCodec, FeatureScaling, build_sampler, data_codec, data_shape
from wgangp.distributed import Shard, broadcast_parameters, process_device
from wgangp.errors import UserError
from wgangp.losses import PENALISED_LOSSES
from wgangp.models import build_coded_models, build_conditional_models
from wgangp.models import build_models as _build_models
from wgangp.models.coded import latent_code
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


def build_models(
    config: TrainConfig, codec: DataCodec | None = None, *, n_classes: int = 0
) -> tuple[nn.Module, nn.Module]:
    """The generator and critic for ``config`` and its data's shape, initialised from ``config.seed`` alone.

    ``codec``: a text or sequences run's (:func:`wgangp.data.data_codec`), which fixes that shape.
    ``n_classes``: K of a conditional run (``config.conditioning``): ``generator(z, y)``, ``critic(x, y)``.
    """
    shape = data_shape(config, codec)
    if config.latent_codes:
        return build_coded_models(config, shape)
    if config.conditioning == "none":
        return _build_models(config, shape)
    return build_conditional_models(config, shape, n_classes, conditioning=config.conditioning)


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

    ``codec``: a saved text or sequences run's ``data_codec`` (its charmap or series format), so its
    models and encoding are rebuilt without reading the data; ``None`` builds it from the data.
    A conditional run (``config.conditioning``) draws each batch's labels with it and has ``n_classes``
    classes: the config's, else the one given (a checkpoint's), else the data's (which loads them).
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        device: torch.device | None = None,
        shard: Shard | None = None,
        codec: dict[str, Any] | None = None,
        n_classes: int | None = None,
    ) -> None:
        self.config = config
        self.codec = data_codec(config, codec)  # text: the charmap; sequences: shape and statistics
        self.shard = shard if shard is not None else Shard()
        self.device = (
            device if device is not None else resolve_device(process_device(config.device, self.shard))
        )
        # eager, fast-eager (mixed precision, lazy penalty, compile) or graph: see wgangp.step.paths.
        self.step_path, _ = choose_step_path(config, self.device, self.shard)
        # The graph path copies host batches into its static buffer itself, without blocking the host.
        data_device = torch.device("cpu") if self.step_path == "graph" else self.device
        # standardize (vectors): μ and σ of the training data, fitted when it loads, saved in checkpoints.
        self.scaling = FeatureScaling() if config.standardize and config.dataset == "vectors" else None
        # Each process reads only its rows of every global batch (wgangp.distributed).
        self.data = build_sampler(
            config,
            data_device,
            self.shard.keep(config.batch_size),
            codec=self.codec,
            scaling=self.scaling,
            labels=self.conditional,
            n_classes=config.n_classes,
        )
        self.n_classes = 0  # K of a conditional run
        if self.conditional:
            assert isinstance(self.data, ArraySampler)  # build_sampler refuses labels elsewhere
            self.n_classes = config.n_classes or n_classes or self.data.n_classes
        generator, critic = (
            m.to(self.device) for m in build_models(config, self.codec, n_classes=self.n_classes)
        )
        if self.shard.distributed:
            broadcast_parameters([generator, critic])
            if config.sync_batchnorm:  # the same Parameters, before the optimizers and the EMA copy see them
                generator = to_global_batchnorm(generator)
                if config.critic_norm == "batch":
                    critic = to_global_batchnorm(critic)
        # Once here, so the hot path can skip the walk over modules. A BatchNorm critic is fine for the
        # losses without a per-sample penalty (the config refuses it for the others).
        check_critic(critic, allow_batchnorm=config.loss not in PENALISED_LOSSES)
        self.state = TrainState.build(config, generator, critic, graph=self.step_path == "graph")
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False) if config.ema_decay > 0 else None
        self.schedulers = build_schedulers(config, (self.generator_opt, self.critic_opt))
        self.step = 0  # completed generator iterations
        self.skipped_updates = 0  # critic and generator updates dropped by ``skip_nonfinite``
        self._guard = self._skip_nonfinite if config.skip_nonfinite else None
        data = self.data
        draw = (
            functools.partial(data, with_labels=True)
            if isinstance(data, ArraySampler) and self.conditional
            else data
        )
        self.iteration = build_iteration(
            config, self.step_path, self.state, draw, self.shard, self._guard, n_classes=self.n_classes
        )

    @property
    def conditional(self) -> bool:
        """Whether this run is class-conditional (``config.conditioning`` acgan or projection)."""
        return self.config.conditioning != "none"

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

    def latents(self, n: int) -> Tensor:
        """``n`` latents ``z ~ N(0, I)`` from the training noise stream (advances it)."""
        return torch.randn(n, self.config.latent_dim, generator=self.noise, device=self.device)

    def critic_step(self) -> dict[str, Tensor]:
        """One critic update on a fresh real batch and fresh z (Algorithm 1, lines 3–10), outside an iteration.

        The update :meth:`train_iteration` runs n_critic times; ``{}`` for an update ``skip_nonfinite`` dropped.
        """
        spec = self.iteration.spec
        if isinstance(self.data, ArraySampler) and self.conditional:
            real, labels = self.data(with_labels=True)  # [n_r, ...], [n_r]
            return critic_update(self.state, spec, real, penalise=True, labels=labels, guard=self._guard)
        real = self.data()  # [n_r, ...]: this process's rows of [B, 2] toy, [B, C, R, R] images
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

    def check_memory(self) -> None:
        """Refuse, in one line, a run whose update step cannot fit in this device's free memory.

        The estimate (:mod:`wgangp.step.memory`) is measured by a small probe of both steps and leaves every
        random stream and buffer alone; where the free memory is unknown nothing is checked.
        """
        from wgangp.step.amp import autocast
        from wgangp.step.memory import available_memory, estimate_memory, format_bytes

        available = available_memory(self.device)
        if available is None:
            return
        cfg = self.config
        rows = self.shard.rows(cfg.batch_size)
        batch_rows = cfg.batch_size if rows is None else rows.stop - rows.start
        estimate = estimate_memory(
            self.generator,
            self.critic,
            sample_shape=data_shape(cfg, self.codec),
            latent_dim=cfg.latent_dim,
            batch_rows=batch_rows,
            generator_rows=batch_rows * cfg.generator_batch_multiple,
            n_critic=cfg.n_critic,
            penalty=cfg.loss == "wgan-gp",
            optimizer_moments=2 if cfg.optimizer == "adam" else 1,
            ema=self.generator_ema is not None,
            reference_rows=max(cfg.batch_size, cfg.eval_samples),
            autocast=lambda: autocast(cfg.precision, self.device),
            n_classes=self.n_classes,
        )
        if estimate.total > available:
            fits = estimate.largest_batch(available, batch_rows) * self.shard.world_size
            hint = f"lower batch_size (about {fits} fits)" if fits > 0 else "use a smaller model"
            raise UserError(
                f"batch_size={cfg.batch_size} needs {estimate.describe()} on {self.device}, more than the "
                f"{format_bytes(available)} free; {hint}"
            )

    def probe_grad_norm(self, real: Tensor, labels: Tensor | None = None) -> Tensor:
        """Mean ‖∇D(x̂)‖ at interpolates between ``real`` and fresh fakes, for any loss (logging only).

        A conditional run's fakes are made for ``labels [n]`` (the reals' labels; drawn uniformly from the
        probe's stream when not given) and the critic scores ``D(x̂, y)``.

        Uses its own random stream and leaves BatchNorm's running buffers alone, so probing never changes the
        training trajectory. Rank 0 alone probes: the generator normalises with the probe batch's own
        statistics (as in training, and as one process does), without a collective the others would miss.
        """
        seed = self.config.seed + PROBE_SEED_OFFSET + self.step
        probe = torch.Generator(device=self.device).manual_seed(seed)
        n = real.shape[0]
        with torch.no_grad(), local_batch_statistics(self.generator):
            z = torch.randn(n, self.config.latent_dim, generator=probe, device=self.device)
            given = self._labels(n, labels, probe)
            fake = self.generator(z, *given)
        eps = torch.rand((n,) + (1,) * (real.ndim - 1), generator=probe, device=self.device)
        points = torch.lerp(fake, real.to(self.device), eps).requires_grad_(True)
        with local_batch_statistics(
            self.critic
        ):  # a BatchNorm critic (penalty-free losses) keeps its buffers
            (grads,) = torch.autograd.grad(self.critic(points, *given).sum(), points)
        return gradient_norms(grads).mean()

    def _labels(self, n: int, labels: Tensor | None, stream: torch.Generator) -> tuple[Tensor, ...]:
        """The networks' label argument: ``labels`` checked, or ``n`` uniform ones from ``stream``; ``()``
        for an unconditional run (which draws nothing, so its streams are as before)."""
        if not self.conditional:
            if labels is not None:
                raise UserError("labels given, but this run is unconditional (conditioning=none)")
            return ()
        if labels is None:
            return (torch.randint(self.n_classes, (n,), generator=stream, device=self.device),)
        if labels.shape != (n,) or labels.is_floating_point():
            raise ValueError(
                f"labels must be integer class indices [{n}]; got {labels.dtype} {tuple(labels.shape)}"
            )
        if n and (int(labels.min()) < 0 or int(labels.max()) >= self.n_classes):
            raise UserError(
                f"labels must be in 0..{self.n_classes - 1} (this run has {self.n_classes} classes); "
                f"got {int(labels.min())}..{int(labels.max())}"
            )
        return (labels.to(self.device, torch.int64),)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int, labels: Tensor | None = None, ema: bool = True) -> Tensor:
        """``n`` generated samples from latents seeded by ``seed`` (independent of the training stream).

        A conditional run makes them for ``labels [n]`` (int64 in ``0..K−1``), or for labels drawn i.i.d.
        uniformly from the same seeded stream after z when ``labels`` is ``None``
        (:meth:`sample_labelled` returns them). From the EMA generator when there is one, unless
        ``ema=False`` (the generator the critic trains against).
        """
        return self.sample_labelled(n, seed=seed, labels=labels, ema=ema)[0]

    @torch.no_grad()
    def sample_labelled(
        self, n: int, *, seed: int, labels: Tensor | None = None, ema: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """:meth:`sample` and the labels the samples were made for (``None`` for an unconditional run)."""
        z, probe = self._seeded_latents(n, seed)
        given = self._labels(n, labels, probe)
        return self.sample_from(z, given[0] if given else None, ema=ema), (given[0] if given else None)

    def _seeded_latents(self, n: int, seed: int) -> tuple[Tensor, torch.Generator]:
        """The ``n`` latents :meth:`sample` draws for ``seed``, and the stream it goes on to draw labels from."""
        probe = torch.Generator(device=self.device).manual_seed(seed)
        return torch.randn(n, self.config.latent_dim, generator=probe, device=self.device), probe

    def sample_codes(self, n: int, *, seed: int) -> Tensor:
        """The codes ``c(z)`` (``latent_codes``) of the samples :meth:`sample` makes for ``(n, seed)``: ``[n]``."""
        if not self.config.latent_codes:
            raise ValueError("this run has no latent code (latent_codes=0)")
        return latent_code(self._seeded_latents(n, seed)[0], self.config.latent_codes).cpu()

    @torch.no_grad()
    def sample_from(self, z: Tensor, labels: Tensor | None = None, *, ema: bool = True) -> Tensor:
        """The generator (its EMA if kept and ``ema``) on latents ``z [n, latent_dim]`` (and ``labels [n]``).

        BatchNorm per ``sample_batchnorm``: running averages (eval mode), or with ``batch`` the ``n`` samples
        normalised in ``⌈n / batch_size⌉`` near-equal batches, each by its own statistics, as in training
        (the official code samples 100 at a time), never one huge batch.
        """
        given = self._labels(z.shape[0], labels, self.noise) if labels is not None else ()
        if self.conditional and not given:
            raise ValueError("a conditional run samples for labels: sample_from(z, labels)")
        generator = self.generator_ema if self.generator_ema is not None and ema else self.generator
        z = z.to(self.device)
        mode = self.config.sample_batchnorm
        if mode == "running":
            return generate(generator, z, *given, batchnorm=mode)
        parts = max(1, -(-z.shape[0] // self.config.batch_size))
        chunks = zip(z.tensor_split(parts), *(g.tensor_split(parts) for g in given), strict=True)
        return torch.cat([generate(generator, *chunk, batchnorm=mode) for chunk in chunks])

    def to_data_units(self, samples: Tensor) -> Tensor:
        """Samples in the data's units: standardised vectors mapped back (``standardize``); else as they are."""
        return samples if self.scaling is None else self.scaling.inverse(samples)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizers, step, config and every RNG state
        (and the data's encoding: a text or sequences run's codec, standardised vectors' scaling)."""
        codec = {} if self.codec is None else {"data_codec": self.codec.to_dict()}
        scaling = {} if self.scaling is None else {"feature_scaling": self.scaling.state_dict()}
        return (
            codec
            | scaling
            | {
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
                **({"n_classes": self.n_classes} if self.conditional else {}),
            }
        )

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
        if self.scaling is not None and state.get("feature_scaling") is not None:
            self.scaling.load_state_dict(state["feature_scaling"])
        self.noise.set_state(state["rng"]["noise"])
        self.data.load_state_dict(state["rng"]["data"])
        self.step = int(state["step"])
        self.skipped_updates = int(state.get("skipped_updates", 0))
        self.iteration.reset()  # captured graphs hold the replaced optimizer state's addresses
