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
from wgangp.losses import ACGAN_SCALE, ACGAN_SCALE_G, PENALISED_LOSSES, LossName
from wgangp.penalty import PenaltyKind, PenaltyPoints, ScoreMap

__all__ = [
    "FIELD_TYPES",
    "MAX_INT",
    "TrainConfig",
    "config_from_dict",
    "describe_fields",
    "field_choices",
    "parse_int",
]

# The nonlinearities of model factored (wgangp.models.activations.ACTIVATIONS; config sits below models).
ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "elu", "softplus", "tanh", "gated")
# Keys that only model factored reads (weight_decay applies to every model).
FACTORED_ONLY: tuple[str, ...] = (
    "activation",
    "critic_activation",
    "conv_depth",
    "generator_filters",
    "critic_filters",
    "residual",
    "generator_model",
)


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
        "training data: toy 2-d sets; digits (sklearn, embedded); mnist, cifar10, folder, vectors (data_path); "
        "text (data_path, or Python's bundled docs); sequences (a .npy of 1-d signals)",
        choices=(
            "8gaussians",
            "25gaussians",
            "swissroll",
            "digits",
            "mnist",
            "cifar10",
            "folder",
            "vectors",
            "text",
            "sequences",
        ),
    )
    data_path: str = _f(
        "",
        "mnist: dir of idx files; cifar10: dir of python pickles; folder: image dir; vectors: .npy/.pt file; "
        "text: a UTF-8 file, or a dir of *.txt ('' = pydoc_data.topics); sequences: .npy [N, C, T] or [N, T]",
    )
    model: str = _f(
        "mlp",
        "mlp (vectors) | dcgan | resnet (paper App. F) | resnet-pyramid (paper 64×64) | "
        "resnet1d (text and sequences, paper Sec. 5.5) | factored (the robustness studies' networks, built "
        "from the architecture factors below) | digits (8×8, 3×3 convs at full resolution)",
        choices=("mlp", "dcgan", "resnet", "resnet-pyramid", "resnet1d", "factored", "digits"),
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
    width: int = _f(
        512, "hidden units per MLP layer (paper: 512); resnet1d: channels of every conv (paper: 512)", low=1
    )
    depth: int = _f(3, "hidden layers per MLP (paper: 3); resnet1d: residual blocks (paper: 5)", low=1)
    critic_spectrum: bool = _f(
        False,
        "resnet1d critic: add a branch on each channel's magnitude spectrum |rfft(x)| to its score (ours, for "
        "signals; preset sequences: true; paper: no)",
    )
    critic_norm: Literal["none", "layer", "batch"] = _f(
        "none",
        "normalisation in the critic (paper: none; layer for WGAN-GP); batch only for gan, lsgan and "
        "wgan-clip with model factored (the paper's GAN critic), never with a per-sample penalty",
        choices=("none", "layer", "batch"),
    )

    # Objective.
    loss: LossName = _f(
        "wgan-gp",
        "wgan-gp | wgan-clip (weight clipping) | gan (standard JS GAN) | lsgan (least squares, Mao et al.)",
        choices=("wgan-gp", "wgan-clip", "gan", "lsgan"),
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
    optimizer_eps: float = _f(
        1e-8,
        "ε added to the root of the second moment by Adam and RMSProp (torch's and the official TF code's "
        "Adam default: 1e-8); larger values damp the full-size steps Adam takes on rounding-noise gradients",
        low=0.0,
        low_open=True,
    )
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

    # Sequences: the paper's character-level language model (Sec. 5.5) and 1-d signals.
    seq_len: int = _f(
        32, "text: characters per sequence, at least 4 for the 4-gram metric (paper: 32)", low=4
    )
    text_mode: Literal["lines", "windows"] = _f(
        "lines",
        "text: one sequence per line, cut or padded with '`' (paper) | consecutive windows of seq_len characters",
        choices=("lines", "windows"),
    )
    max_vocab: int = _f(
        2048, "text: most characters in the charmap, the unknown one included (paper: 2048)", low=2
    )
    held_out: int = _f(
        640,
        "text/sequences: samples held out for the metric's real-vs-real floor, at most a fifth of the data "
        "(paper: 640, the size of its generated set)",
        low=0,
    )

    # Conditioning (class-conditional WGAN-GP; the paper's Table 3 "supervised": AC-GAN).
    conditioning: Literal["none", "acgan", "projection"] = _f(
        "none",
        "none | acgan (a classifier head beside the critic's score, conditional BatchNorm in G; paper "
        "Table 3) | projection (D(x, y) = ψ(φ(x)) + embed(y)·φ(x), Miyato & Koyama 2018); needs labels",
        choices=("none", "acgan", "projection"),
    )
    n_classes: int = _f(0, "classes of a conditional run; 0 = from the data's labels (largest + 1)", low=0)
    acgan_scale: float = _f(
        ACGAN_SCALE, "weight of the critic's cross-entropy on real labels (official ACGAN_SCALE: 1)", low=0.0
    )
    acgan_scale_g: float = _f(
        ACGAN_SCALE_G,
        "weight of the generator's cross-entropy on its labels (official ACGAN_SCALE_G: 0.1)",
        low=0.0,
    )

    # An unsupervised categorical code (InfoGAN's, Chen et al. 2016): classes without labels.
    latent_codes: int = _f(
        0,
        "K: a uniform categorical code c = argmax of z's first K entries, fed to the generator like a class "
        "label (conditional BatchNorm, or one-hot beside z), with a K-way head Q(c | x) on the critic that "
        "critic and generator train to recover c (InfoGAN's categorical code, Chen et al. 2016; needs no "
        "labels; paper: off); 0 = off",
        low=0,
    )
    info_scale: float = _f(
        1.0,
        "λ_I: weight of CE(Q(G(z)), c), the code's cross-entropy, in the critic's and the generator's loss "
        "(InfoGAN: 1); 0 = the code without the head (a mixture latent)",
        low=0.0,
    )

    # Score-map critics and user data (issue 12).
    penalty_score_map: ScoreMap = _f(
        "sum",
        "critics returning scores [N, ...] (PatchGAN): sum = the norm of each sample's summed scores' gradient "
        "(the seed's grad_outputs=ones, TF-GAN) | per-location = one penalty per location, averaged",
        choices=("sum", "per-location"),
    )
    standardize: bool = _f(
        False,
        "vectors: each feature, sequences: each channel standardised to mean 0, std 1 (the training split's "
        "statistics, saved in the run); samples come back in the data's units (preset sequences: true; paper: no)",
    )

    # Architecture factors of model=factored (paper Sec. 5.1 / Table 1, Sec. 5.2 / Figure 2;
    # wgangp.models.factored). conv_width, generator_norm and critic_norm above apply too; the MLP
    # generator takes width and depth. The defaults with conv_depth = the resolution's steps are DCGAN.
    activation: str = _f(
        "relu",
        "generator nonlinearity of model factored (Table 1: relu, leaky_relu, softplus, tanh; Fig. 2: gated)",
        choices=ACTIVATIONS,
    )
    critic_activation: str = _f(
        "leaky_relu", "critic nonlinearity of model factored (DCGAN: leaky_relu 0.2)", choices=ACTIVATIONS
    )
    conv_depth: int = _f(
        4,
        "conv layers per network of model factored, ≥ log2(resolution/4) (Table 1: 4, 8, 12, 20); "
        "residual: weight layers 3·blocks + 2 (Fig. 2: 101)",
        low=1,
    )
    generator_filters: Literal["double", "constant"] = _f(
        "double",
        "generator widths of model factored: double per step towards 4×4 (DCGAN) | constant W (Fig. 2)",
        choices=("double", "constant"),
    )
    critic_filters: Literal["double", "constant"] = _f(
        "double",
        "critic widths of model factored: double per step (DCGAN) | constant W",
        choices=("double", "constant"),
    )
    residual: bool = _f(False, "model factored as bottleneck ResNets (Fig. 2's 101-layer ResNet; paper: off)")
    generator_model: Literal["conv", "mlp"] = _f(
        "conv",
        "generator of model factored: conv | mlp (Fig. 2's ReLU MLP, width × depth: 512 × 4)",
        choices=("conv", "mlp"),
    )
    weight_decay: float = _f(
        0.0, "L2 weight decay of both optimizers (torch's weight_decay; paper: 0)", low=0.0
    )

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
        if self.conditioning == "none" and self.n_classes:
            raise UserError(f"n_classes={self.n_classes} needs conditioning=acgan or projection")
        if self.conditioning != "none" and self.dataset in _UNLABELLED:
            raise UserError(
                f"conditioning={self.conditioning} needs class labels; dataset {self.dataset} has none "
                "(digits, mnist, cifar10, folder with one sub-folder per class, vectors from a .npz with y)"
            )
        self._check_codes()
        if self.critic_spectrum and self.model != "resnet1d":
            raise UserError(f"critic_spectrum needs model resnet1d (sequences); got model {self.model}")
        if self.standardize and self.dataset not in ("vectors", "sequences"):
            raise UserError(
                f"standardize applies to --dataset vectors and sequences only; got dataset {self.dataset}"
            )
        if self.loss == "wgan-gp" and self.penalty_weight == 0:
            raise UserError(
                "penalty_weight=0 with loss wgan-gp trains an unconstrained critic (no Lipschitz constraint, "
                "the WGAN estimate diverges); use a positive λ (paper: 10), or --loss wgan-clip for weight clipping"
            )
        if self.monitor_samples and not self.monitor_holdout:
            raise UserError("monitor_samples needs the monitor on: set monitor_holdout to 2 or more samples")
        self._check_architecture()

    def _check_codes(self) -> None:
        """``latent_codes``: a K of 2 or more that fits the rest of the config (:func:`code_conflict`)."""
        if self.latent_codes == 1:
            raise UserError(f"latent_codes must be 0 (off) or at least 2 categories; got {self.latent_codes}")
        conflict = code_conflict(self.to_dict())
        if conflict:
            raise UserError(conflict)

    def _check_architecture(self) -> None:
        """The factors' cross-field rules: a BatchNorm critic, and factors of model factored only."""
        if self.critic_norm == "batch" and self.loss in PENALISED_LOSSES:
            raise UserError(
                f"critic_norm must be one of none, layer with loss {self.loss}: BatchNorm mixes samples, so "
                "the per-sample gradient penalty is wrong (batch is for gan, lsgan, wgan-clip); got 'batch'"
            )
        if self.model == "factored":
            return
        if self.critic_norm == "batch":
            raise UserError(f"critic_norm batch needs model factored; model {self.model} has none")
        defaults = {f.name: f.default for f in fields(self)}
        changed = [name for name in FACTORED_ONLY if getattr(self, name) != defaults[name]]
        if changed:
            raise UserError(f"{', '.join(changed)} set, but only model factored uses it; add model=factored")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return config_from_dict(self.to_dict() | changes)


_UNLABELLED = ("8gaussians", "25gaussians", "swissroll")  # the toy sets: points without classes


def code_conflict(values: Mapping[str, Any]) -> str | None:
    """Why ``values``' ``latent_codes`` cannot go with its other keys (a shorter latent, class labels, a
    model without class inputs), or ``None`` when it can (or is off). ``resolve_config`` drops a preset's
    code on a conflict; a chosen one is refused with this message."""
    codes, latent = values.get("latent_codes", 0), values.get("latent_dim")
    if not isinstance(codes, int) or not codes:
        return None  # off (a bad type is the field check's to report)
    if isinstance(latent, int) and codes > latent:
        return f"latent_codes={codes} takes the code from z's first K entries; it must be at most latent_dim={latent}"
    conditioning = values.get("conditioning", "none")
    if conditioning != "none":
        return (
            f"latent_codes is the unsupervised code; with conditioning={conditioning} the labels are the "
            "classes (set latent_codes=0, or conditioning=none)"
        )
    if values.get("model") in ("resnet1d", "factored"):
        return (
            "latent_codes needs a model with class inputs (mlp, dcgan, digits, resnet, resnet-pyramid); "
            f"model {values.get('model')} has none"
        )
    return None


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
        raise UserError(f"{f.name} must be {_KIND_WORDS.get(kind, kind.__name__)}; got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value < MAX_INT:
        raise UserError(f"{f.name} must be an integer below 2^63; got {value}")
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


# One rule for integer keys wherever they come from: an int64 (torch's, and the checkpoints').
MAX_INT = 2**63
_KIND_WORDS: dict[type, str] = {int: "an integer", float: "a number", str: "a string"}


def parse_int(text: str) -> int:
    """An integer from text: digits (``2000``, ``-3``, ``1_000``) or exact scientific notation (``1e5``,
    ``2.5e3``), in int64 range; anything else (``1.5``, ``1e30``, ``abc``) is a ``ValueError``.

    The one rule for integers on the command line: ``--steps``, ``-n``, ``--set steps=...`` all use it.
    """
    text = text.strip()
    try:
        value = int(text)
    except ValueError:
        number = float(text)  # ValueError for text that is no number
        if not math.isfinite(number) or number != int(number) or abs(number) > 2**53:
            raise ValueError(f"not an integer: {text!r}") from None
        value = int(number)
    if not -MAX_INT <= value < MAX_INT:
        raise ValueError(f"outside int64: {text!r}")
    return value


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
