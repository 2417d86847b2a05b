"""The training configuration's schema: one frozen dataclass whose fields carry their meaning and range.

Every default has one home, a field below whose metadata gives its meaning, its allowed values and the
paper's value. The CLI's flags and choices, ``--set key=value``, TOML config files and saved run configs
all derive from it (presets: :mod:`wgangp.config.presets`; layering: :mod:`wgangp.config.layers`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from wgangp.errors import UserError
from wgangp.losses import LossName
from wgangp.penalty import PenaltyKind, PenaltyPoints

__all__ = ["FIELD_TYPES", "TrainConfig", "config_from_dict", "describe_fields", "field_choices"]


def _f(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] = (),
    low: float | None = None,
    low_open: bool = False,
    high: float | None = None,
) -> Any:
    """A dataclass field whose metadata carries its help text and allowed range."""
    meta = {"help": help, "choices": choices, "low": low, "low_open": low_open, "high": high}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults are the official toy recipe (gan_toy.py)."""

    # Data and models.
    dataset: str = _f(
        "8gaussians",
        "training data: toy 2-d sets; digits (sklearn, embedded); mnist, cifar10, folder, vectors (data_path)",
        choices=("8gaussians", "25gaussians", "swissroll", "digits", "mnist", "cifar10", "folder", "vectors"),
    )
    data_path: str = _f(
        "",
        "mnist: dir of idx files; cifar10: dir of python pickles; folder: image dir; vectors: .npy/.pt file",
    )
    model: str = _f(
        "mlp",
        "mlp (vectors) | dcgan | resnet (paper App. F) | resnet-pyramid (paper 64×64) | digits (8×8, 3×3 convs "
        "at full resolution; ours)",
        choices=("mlp", "dcgan", "resnet", "resnet-pyramid", "digits"),
    )
    resolution: int = _f(
        0, "image side in pixels; 0 = the dataset's own (digits 8, mnist 28, cifar10 32)", low=0
    )
    channels: int = _f(0, "image channels, 1 (gray) or 3 (RGB); 0 = the dataset's own", choices=(0, 1, 3))
    conv_width: int = _f(
        64, "base channels W of the conv models (official DIM: 64 MNIST/64px, 128 CIFAR)", low=1
    )
    generator_norm: Literal["batch", "none"] = _f(
        "batch",
        "normalisation in conv generators (paper: batch; official MNIST: none)",
        choices=("batch", "none"),
    )
    dequantize: bool = _f(
        False, "images as 2(x/256 − .5) + U(0, 1/128) (paper ResNet) instead of x/127.5 − 1"
    )
    hflip: bool = _f(False, "random horizontal flips of real images")
    num_workers: int = _f(
        0, "DataLoader worker processes for image folders (0 = load in the main process)", low=0
    )
    latent_dim: int = _f(2, "generator input size, z ~ N(0, I) (toy: 2)", low=1)
    width: int = _f(512, "hidden units per MLP layer (paper: 512)", low=1)
    depth: int = _f(3, "hidden layers per MLP (paper: 3)", low=1)
    critic_norm: Literal["none", "layer"] = _f(
        "none", "normalisation in the critic, never BatchNorm (paper: none)", choices=("none", "layer")
    )

    # Objective.
    loss: LossName = _f(
        "wgan-gp",
        "wgan-gp | wgan-clip (weight clipping) | gan (standard JS GAN)",
        choices=("wgan-gp", "wgan-clip", "gan"),
    )
    penalty_weight: float = _f(0.1, "λ, the penalty weight (official toy code: 0.1; paper: 10)", low=0.0)
    penalty_kind: PenaltyKind = _f(
        "two-sided",
        "two-sided (WGAN-GP) | one-sided (WGAN-LP) | zero-centered (R1/R2)",
        choices=("two-sided", "one-sided", "zero-centered"),
    )
    penalty_target: float = _f(1.0, "the gradient norm the penalty pulls towards (paper: 1)", low=0.0)
    penalty_at: PenaltyPoints = _f(
        "interpolates",
        "where the penalty is taken (paper: interpolates)",
        choices=("interpolates", "real", "fake", "dragan"),
    )
    penalty_fraction: float = _f(
        1.0, "fraction of the batch the penalty is computed on (paper: 1)", low=0.0, low_open=True, high=1.0
    )
    clip_value: float = _f(
        0.01, "weight clipping bound c for wgan-clip (WGAN paper: 0.01)", low=0.0, low_open=True
    )

    # Optimisation (Algorithm 1).
    optimizer: Literal["adam", "rmsprop"] = _f(
        "adam", "adam (WGAN-GP) | rmsprop (WGAN with clipping)", choices=("adam", "rmsprop")
    )
    lr_critic: float = _f(1e-4, "critic learning rate α (paper: 1e-4)", low=0.0, low_open=True)
    lr_generator: float = _f(1e-4, "generator learning rate (paper: 1e-4)", low=0.0, low_open=True)
    beta1: float = _f(0.5, "Adam β1 (paper: 0.5 toy/DCGAN, 0 ResNet)", low=0.0, high=1.0)
    beta2: float = _f(0.9, "Adam β2 (paper: 0.9)", low=0.0, high=1.0)
    n_critic: int = _f(5, "critic updates per generator update (paper: 5)", low=1)
    batch_size: int = _f(256, "samples per batch m (toy: 256)", low=1)
    generator_batch_multiple: int = _f(
        1, "generator batch = this × batch_size (paper ResNet: 2, i.e. 128 vs 64)", low=1
    )
    steps: int = _f(100_000, "generator iterations (official toy code: 100000)", low=1)
    lr_decay: Literal["none", "linear"] = _f(
        "none",
        "learning-rate schedule over the steps (paper ResNet: linear to 0)",
        choices=("none", "linear"),
    )
    ema_decay: float = _f(
        0.0,
        "EMA of the generator's weights for samples and eval; 0 = off (paper: off)",
        low=0.0,
        high=0.99999,
    )

    # Speed (wgangp.step). None of these changes the math; see README "Speed".
    precision: Literal["fp32", "bf16", "fp16"] = _f(
        "fp32",
        "fp32 | bf16 (autocast, no scaler) | fp16 (autocast + GradScaler, PyTorch's AMP penalty recipe) (paper: fp32)",
        choices=("fp32", "bf16", "fp16"),
    )
    penalty_every: int = _f(
        1, "lazy regularisation: penalty on every k-th critic step, weight ×k (paper: 1, every step)", low=1
    )
    lazy_adam_rescale: bool = _f(
        False, "with penalty_every=k, critic Adam lr·c and β^c, c = k/(k+1), as StyleGAN2 (paper: off)"
    )
    step_mode: Literal["auto", "eager", "graph"] = _f(
        "auto",
        "auto (CUDA graph of a whole generator iteration where supported, else eager) | eager | graph",
        choices=("auto", "eager", "graph"),
    )
    compile: bool = _f(
        False, "torch.compile the critic loss with its penalty (needs torch >= 2.11; paper: off)"
    )

    # Run.
    seed: int = _f(0, "seed for data, noise and weights (deterministic on CPU)", low=0)
    device: str = _f("auto", "auto | cpu | cuda | cuda:N", choices=())
    log_every: int = _f(50, "generator iterations between log lines", low=1)
    eval_every: int = _f(500, "generator iterations between metric evaluations", low=1)
    plot_every: int = _f(500, "generator iterations between plots", low=1)
    checkpoint_every: int = _f(1000, "generator iterations between checkpoints", low=1)
    keep_checkpoints: int = _f(3, "newest step checkpoints kept in checkpoints/ (plus best.pt)", low=1)
    skip_nonfinite: bool = _f(
        False, "skip an update whose loss or gradient is non-finite instead of stopping the run"
    )
    dist_timeout: int = _f(
        1800,
        "torchrun: seconds a process waits at a collective before the job fails (a dead rank); must exceed "
        "rank 0's longest pause for evaluation, plots and checkpoints",
        low=1,
    )
    sync_batchnorm: bool = _f(
        True,
        "generator BatchNorm uses the global batch's statistics under torchrun, so N processes train as one; "
        "false: each process normalises its own rows (DDP without SyncBatchNorm)",
    )
    eval_samples: int = _f(2000, "samples for W1 and mode metrics (n generated vs n real)", low=2)
    grid_samples: int = _f(64, "images in each sample grid (a fixed latent batch)", low=1)

    # Meaningful loss curves (paper §5.6, Figure 5): how samples are drawn, and the held-out critic monitor.
    sample_batchnorm: Literal["running", "batch"] = _f(
        "running",
        "generator BatchNorm when sampling (eval, sample, grids, Inception metrics): running averages | the "
        "sampled batch's own statistics (official code: batch)",
        choices=("running", "batch"),
    )
    train_subset: int = _f(
        0, "train on the first N real samples only; 0 = all (paper Fig. 5b: 1,000 MNIST digits)", low=0
    )
    monitor_holdout: int = _f(
        0,
        "held-out real samples, never trained on, on which the critic's estimate is taken at every eval "
        "beside a fixed training subset (w_train, w_val, w_gap); 0 = monitor off (paper Fig. 5b)",
        low=0,
    )
    monitor_samples: int = _f(
        0, "fixed training samples and fakes the monitor scores; 0 = as many as monitor_holdout", low=0
    )
    overfit_sigmas: float = _f(
        3.0,
        "k: the monitor warns of overfitting when w_gap exceeds k bootstrap standard errors for "
        "overfit_patience evals in a row (ours; one-sided 3σ)",
        low=0.0,
        low_open=True,
    )
    overfit_patience: int = _f(
        3, "p: evals in a row the gap must exceed overfit_sigmas SE before the monitor warns (ours)", low=1
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_value(f, getattr(self, f.name))
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise UserError(f"device must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        if self.monitor_samples and not self.monitor_holdout:
            raise UserError("monitor_samples needs the monitor on: set monitor_holdout to 2 or more samples")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return config_from_dict(self.to_dict() | changes)


def _check_value(f: dataclasses.Field[Any], value: Any) -> None:
    """Type and range check of one field; the error names the key and the allowed values."""
    kind = type(f.default)
    if kind is bool:
        if not isinstance(value, bool):
            raise UserError(f"{f.name} must be true or false; got {value!r}")
        return
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise UserError(f"{f.name} must be a {kind.__name__}; got {value!r}")
    meta = f.metadata
    if meta["choices"] and value not in meta["choices"]:
        raise UserError(f"{f.name} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}")
    if kind in (int, float):
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{f.name} must be finite; got {value}")
        low, high = meta["low"], meta["high"]
        too_low = low is not None and (value <= low if meta["low_open"] else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            raise UserError(f"{f.name} must be in {_range_text(meta)}; got {value}")


def _range_text(meta: Mapping[str, Any]) -> str:
    left = "(" if meta["low_open"] else "["
    low = "-inf" if meta["low"] is None else f"{meta['low']:g}"
    high = "inf)" if meta["high"] is None else f"{meta['high']:g}]"
    return f"{left}{low}, {high}"


def describe_fields() -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help with the allowed range) for every field, for ``--help`` and the README."""
    rows = []
    for f in fields(TrainConfig):
        meta = f.metadata
        allowed = ", ".join(map(str, meta["choices"])) if meta["choices"] else ""
        if not allowed and (meta["low"] is not None or meta["high"] is not None):
            allowed = _range_text(meta)
        text = meta["help"] + (f" [{allowed}]" if allowed else "")
        rows.append((f.name, type(f.default).__name__, f.default, text))
    return rows


FIELD_TYPES: dict[str, type] = {f.name: type(f.default) for f in fields(TrainConfig)}


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """A checked config from a mapping; unknown keys are an error naming them."""
    unknown = sorted(set(values) - set(FIELD_TYPES))
    if unknown:
        raise UserError(f"unknown config key(s): {', '.join(unknown)} (see `wgangp train --help-config`)")
    coerced: dict[str, Any] = {
        k: float(v) if FIELD_TYPES[k] is float and isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in values.items()
    }
    return TrainConfig(**coerced)


def field_choices(name: str) -> tuple[Any, ...]:
    """The allowed values of a closed-choice field, for the CLI's ``choices=`` (one home: the field)."""
    return tuple(TrainConfig.__dataclass_fields__[name].metadata["choices"])
