"""The presets: the paper's and the official code's recipes, our tuned ones, and the baselines' recipes.

Each preset is a description and the keys it sets over :class:`~wgangp.config.schema.TrainConfig`'s
defaults; ``--loss`` applies a baseline's recipe from :data:`LOSS_RECIPES` on top.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DATASET_PRESETS", "LOSS_RECIPES", "METHOD_RECIPES", "PRESETS"]

_IMAGE_COMMON: dict[str, Any] = {
    "latent_dim": 128,
    "penalty_weight": 10.0,
    "n_critic": 5,
    "lr_critic": 1e-4,
    "lr_generator": 1e-4,
    "beta1": 0.5,
    "beta2": 0.9,
    "batch_size": 64,
    "steps": 200_000,
    "log_every": 100,
    "eval_every": 5000,
    "plot_every": 1000,
    "checkpoint_every": 5000,
    "eval_samples": 5000,
    # The official generators normalise with the sampled batch's statistics (tflib's BatchNorm, always in
    # training mode); running averages would be PyTorch's eval() (README "Reading the curves").
    "sample_batchnorm": "batch",
}

_SEQUENCE_COMMON: dict[str, Any] = {
    "model": "resnet1d",
    "latent_dim": 128,
    "penalty_weight": 10.0,
    "lr_critic": 1e-4,
    "lr_generator": 1e-4,
    "beta1": 0.5,
    "beta2": 0.9,
    "batch_size": 64,
    "log_every": 100,
    "eval_every": 1000,
    "plot_every": 1000,
    "checkpoint_every": 5000,
    "eval_samples": 640,
    "grid_samples": 64,
}

# The preset `wgangp train --dataset NAME` starts from when no --preset is given.
DATASET_PRESETS: dict[str, str] = {
    "digits": "digits",
    "mnist": "mnist",
    "cifar10": "cifar-dcgan",
    "folder": "64px-resnet",
    "text": "text",
    "sequences": "sequences",
}

# Presets: the paper's and official code's recipes, and our tuned one. Each says what it follows.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "toy": (
        "official gan_toy.py: MLP 512×3, batch 256, Adam 1e-4 (0.5, 0.9), n_critic 5, λ=0.1, 100k iterations",
        {},
    ),
    "toy-paper": (
        "the paper's λ=10 on the toy recipe (learns 8 gaussians far more slowly on CPU; see README)",
        {"penalty_weight": 10.0},
    ),
    "fast": (
        "ours, tuned for time-to-quality on CPU: MLP 128×3, Adam 2e-3 (0.5, 0.9) decayed linearly to 0 over "
        "2000 iterations, λ=0.1; the same WGAN-GP math",
        {
            "width": 128,
            "depth": 3,
            "lr_critic": 2e-3,
            "lr_generator": 2e-3,
            "lr_decay": "linear",
            "steps": 2000,
            "eval_every": 250,
            "plot_every": 500,
        },
    ),
    # Images (Gulrajani et al. 2017, Sec. 5 and App. F; official gan_mnist.py, gan_cifar.py,
    # gan_cifar_resnet.py, gan_64x64.py). All use λ = 10, n_critic = 5 and 128-d latents.
    "digits": (
        "tuned for CPU (~4.5 minutes on 2 cores): sklearn's 8×8 digits at their own size, 3×3 convs at full "
        "resolution (W=48), a 16-d latent whose first 10 entries carry InfoGAN's categorical code, Adam 1e-3 "
        "(0.5, 0.9) decayed linearly over 2000 iterations, n_critic 3, λ=1, generator EMA 0.995, "
        "batch-statistics sampling",
        {
            **_IMAGE_COMMON,
            "dataset": "digits",
            "model": "digits",
            "resolution": 8,
            "conv_width": 48,
            "latent_dim": 16,
            "latent_codes": 10,
            "info_scale": 1.0,
            "penalty_weight": 1.0,
            "n_critic": 3,
            "lr_critic": 1e-3,
            "lr_generator": 1e-3,
            "lr_decay": "linear",
            "ema_decay": 0.995,
            "batch_size": 64,
            "steps": 2000,
            "eval_every": 250,
            "plot_every": 500,
            "log_every": 50,
            "eval_samples": 1000,
        },
    ),
    "digits-dcgan": (
        "the digits preset before its retuning: a small DCGAN (W=32) on the 8×8 digits, Adam 1e-3 (0.5, 0.9), "
        "λ=10, 2000 iterations, running-average sampling; the recipe of the robustness and figure 2 studies "
        "(kept as it is so that their study ids keep naming the same runs)",
        {
            **_IMAGE_COMMON,
            "dataset": "digits",
            "model": "dcgan",
            "resolution": 8,
            "conv_width": 32,
            "latent_dim": 64,
            "lr_critic": 1e-3,
            "lr_generator": 1e-3,
            "batch_size": 64,
            "steps": 2000,
            "eval_every": 100,
            "plot_every": 250,
            "log_every": 50,
            "eval_samples": 1000,
            "sample_batchnorm": "running",
        },
    ),
    "mnist": (
        "official gan_mnist.py: DCGAN W=64 (no BN in G), batch 50, Adam 1e-4 (0.5, 0.9), 200k iterations",
        {
            **_IMAGE_COMMON,
            "dataset": "mnist",
            "model": "dcgan",
            "resolution": 28,
            "conv_width": 64,
            "generator_norm": "none",
            "batch_size": 50,
            "steps": 200_000,
        },
    ),
    "cifar-dcgan": (
        "official gan_cifar.py: DCGAN W=128 (BN in G), batch 64, Adam 1e-4 (0.5, 0.9), 200k iterations",
        {**_IMAGE_COMMON, "dataset": "cifar10", "model": "dcgan", "resolution": 32, "conv_width": 128},
    ),
    "cifar-resnet": (
        "paper App. F / gan_cifar_resnet.py: ResNet W=128, batch 64 (G 128), Adam 2e-4 (0, 0.9) decayed "
        "linearly to 0 over 100k iterations, dequantised inputs",
        {
            **_IMAGE_COMMON,
            "dataset": "cifar10",
            "model": "resnet",
            "resolution": 32,
            "conv_width": 128,
            "generator_batch_multiple": 2,
            "lr_critic": 2e-4,
            "lr_generator": 2e-4,
            "beta1": 0.0,
            "lr_decay": "linear",
            "dequantize": True,
            "steps": 100_000,
        },
    ),
    "64px-resnet": (
        "official gan_64x64.py: pyramid ResNet W=64, LayerNorm critic, batch 64, Adam 1e-4 (0, 0.9), "
        "200k iterations; an image folder (--data-path DIR)",
        {
            **_IMAGE_COMMON,
            "dataset": "folder",
            "model": "resnet-pyramid",
            "resolution": 64,
            "channels": 3,
            "conv_width": 64,
            "critic_norm": "layer",
            "beta1": 0.0,
        },
    ),
    # Sequences (Sec. 5.5; official gan_language.py): 1-D ResNets, λ = 10, 128-d latents, no normalisation.
    "text-paper": (
        "official gan_language.py: 1-D ResNet W=512, 5 blocks, 32 characters, batch 64, Adam 1e-4 (0.5, 0.9), "
        "n_critic 10, λ=10, 200k iterations; JS of 640 samples",
        {
            **_SEQUENCE_COMMON,
            "dataset": "text",
            "width": 512,
            "depth": 5,
            "n_critic": 10,
            "steps": 200_000,
        },
    ),
    "text": (
        "tuned for CPU (~4 CPU-minutes): the paper's language model at W=32, 3 blocks, Adam 6e-3 (0.5, 0.9) "
        "decayed linearly over 3000 iterations, n_critic 2, λ=10, generator EMA 0.995; Python's bundled docs "
        "by default",
        {
            **_SEQUENCE_COMMON,
            "dataset": "text",
            "width": 32,
            "depth": 3,
            "lr_critic": 6e-3,
            "lr_generator": 6e-3,
            "lr_decay": "linear",
            "ema_decay": 0.995,
            "n_critic": 2,
            "steps": 3000,
            "log_every": 50,
            "eval_every": 250,
            "plot_every": 500,
            "checkpoint_every": 500,
        },
    ),
    "sequences": (
        "tuned for CPU (~3 CPU-minutes): 1-d signals (--data-path x.npy) with the language model's 1-D ResNet at "
        "W=64, 3 blocks, linear outputs, each channel standardised, Adam 1e-3 (0.5, 0.9) decayed linearly over "
        "500 iterations, n_critic 5, λ=10, generator EMA 0.99, and a magnitude-spectrum branch in the critic",
        {
            **_SEQUENCE_COMMON,
            "dataset": "sequences",
            "standardize": True,
            "critic_spectrum": True,
            "width": 64,
            "depth": 3,
            "lr_critic": 1e-3,
            "lr_generator": 1e-3,
            "lr_decay": "linear",
            "ema_decay": 0.99,
            "n_critic": 5,
            "steps": 500,
            "log_every": 20,
            "eval_every": 50,
            "plot_every": 100,
            "checkpoint_every": 100,
        },
    ),
}
# The sequences preset with the zero-centred penalty on real data (R1, Mescheder et al. 2018) instead of
# WGAN-GP's two-sided one on interpolates, at twice the learning rate (which helps R1 and not WGAN-GP's
# penalty): the recipe that reaches issue 14's spectral target (README "Sequences").
PRESETS["sequences-r1"] = (
    "the sequences preset with the zero-centred penalty on real data (R1, γ=1) instead of WGAN-GP's two-sided "
    "one on interpolates and Adam 2e-3: within 2x the spectral floor on the test sines (README 'Sequences')",
    {
        **PRESETS["sequences"][1],
        "penalty_kind": "zero-centered",
        "penalty_at": "real",
        "penalty_weight": 1.0,
        "lr_critic": 2e-3,
        "lr_generator": 2e-3,
    },
)

# Class-conditional presets (README "Conditional"): each is its unconditional preset plus the labels.
PRESETS["digits-acgan"] = (
    "the digits recipe at W=32 with AC-GAN conditioning (classifier head on the critic, conditional "
    "BatchNorm in G; scales 1 and 0.1) instead of the unsupervised code",
    {**PRESETS["digits"][1], "conditioning": "acgan", "latent_codes": 0, "conv_width": 32},
)
PRESETS["cifar-resnet-acgan"] = (
    "paper Table 3 'supervised' / gan_cifar_resnet.py with CONDITIONAL and ACGAN: cifar-resnet with an "
    "AC-GAN critic head (CE scale 1, generator 0.1) and conditional BatchNorm in G",
    {**PRESETS["cifar-resnet"][1], "conditioning": "acgan", "acgan_scale": 1.0, "acgan_scale_g": 0.1},
)

# The baselines' own recipes, applied when ``--loss`` picks them (before config files and --set).
LOSS_RECIPES: dict[str, dict[str, Any]] = {
    "wgan-gp": {"loss": "wgan-gp"},
    # WGAN (Arjovsky et al. 2017, Algorithm 1): RMSProp 5e-5, clip ±0.01, n_critic 5.
    "wgan-clip": {
        "loss": "wgan-clip",
        "optimizer": "rmsprop",
        "lr_critic": 5e-5,
        "lr_generator": 5e-5,
        "n_critic": 5,
        "clip_value": 0.01,
    },
    # Standard GAN (DCGAN recipe): Adam 2e-4 (0.5, 0.999), one D step per G step, non-saturating G loss.
    "gan": {
        "loss": "gan",
        "optimizer": "adam",
        "lr_critic": 2e-4,
        "lr_generator": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "n_critic": 1,
    },
}
# LSGAN (Mao et al. 2017), the paper's Sec. 5.2 baseline: the GAN's Adam 2e-4 (0.5, 0.999), n_critic 1.
LOSS_RECIPES["lsgan"] = LOSS_RECIPES["gan"] | {"loss": "lsgan"}

# The methods `wgangp compare --methods` trains: a loss and its optimizer recipe. Each is a set of keys over
# the preset, like LOSS_RECIPES (and applied at the same layer); a method is not a loss, so none of these
# names reaches TrainConfig except through its "loss" key.
METHOD_RECIPES: dict[str, dict[str, Any]] = {
    "wgan-gp": LOSS_RECIPES["wgan-gp"],
    # The paper's Figure 3 control: WGAN-GP with clipping's optimizer and learning rate (RMSProp 5e-5),
    # so that a gap between WGAN-GP and clipping is not the optimizer's.
    "wgan-gp-rmsprop": {
        **LOSS_RECIPES["wgan-gp"],
        "optimizer": "rmsprop",
        "lr_critic": 5e-5,
        "lr_generator": 5e-5,
    },
    "wgan-clip": LOSS_RECIPES["wgan-clip"],
    "gan": LOSS_RECIPES["gan"],
}
