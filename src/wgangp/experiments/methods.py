"""The methods a comparison trains, their labels and colours, and the curves drawn for each."""

from __future__ import annotations

__all__ = ["CURVE_KEYS", "METHODS", "METHOD_COLORS", "METHOD_LABELS", "method_label"]

METHODS: tuple[str, ...] = ("wgan-gp", "wgan-clip", "gan")
METHOD_LABELS: dict[str, str] = {
    "wgan-gp": "WGAN-GP",
    "wgan-clip": "WGAN (weight clipping)",
    "gan": "standard GAN",
    "lsgan": "LSGAN",
}
METHOD_COLORS: dict[str, str] = {
    "wgan-gp": "tab:blue",
    "wgan-clip": "tab:red",
    "gan": "tab:green",
    "lsgan": "tab:purple",
}
# The training stats drawn as curves, in panel order (mean ‖∇D(x̂)‖ is probed the same way for every loss).
CURVE_KEYS: tuple[str, ...] = ("wasserstein", "grad_norm", "critic_loss", "generator_loss")


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)
