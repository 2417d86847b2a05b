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
}

# The preset `wgangp train --dataset NAME` starts from when no --preset is given.
DATASET_PRESETS: dict[str, str] = {
    "digits": "digits",
    "mnist": "mnist",
    "cifar10": "cifar-dcgan",
    "folder": "64px-resnet",
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
        "tuned for CPU: sklearn's 8×8 digits at their own size, a small DCGAN (W=32), Adam 1e-3 (0.5, 0.9), λ=10",
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
}

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
