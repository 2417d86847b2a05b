"""The methods a comparison trains, their labels and colours, and the curves drawn for each.

A method is a loss and its optimizer recipe (:data:`wgangp.config.METHOD_RECIPES`): ``wgan-gp`` (Adam),
``wgan-gp-rmsprop`` (the paper's Figure 3 control: the penalty with clipping's RMSProp 5e-5), ``wgan-clip``
(RMSProp 5e-5, c = 0.01) and ``gan`` (the standard GAN, Adam 2e-4, one critic step).
"""

from __future__ import annotations

from collections.abc import Sequence

from wgangp.config import METHOD_RECIPES
from wgangp.errors import UserError

__all__ = [
    "CURVE_KEYS",
    "CURVE_METRICS",
    "METHODS",
    "METHOD_CHOICES",
    "METHOD_COLORS",
    "METHOD_LABELS",
    "PENALTY_METHODS",
    "check_methods",
    "method_label",
    "parse_methods",
]

METHODS: tuple[str, ...] = ("wgan-gp", "wgan-clip", "gan")  # what `compare` trains without --methods
METHOD_CHOICES: tuple[str, ...] = tuple(METHOD_RECIPES)
PENALTY_METHODS: tuple[str, ...] = ("wgan-gp", "wgan-gp-rmsprop")  # the WGAN-GP arms, preferred first
METHOD_LABELS: dict[str, str] = {
    "wgan-gp": "WGAN-GP",
    "wgan-gp-rmsprop": "WGAN-GP (RMSProp)",
    "wgan-clip": "WGAN (weight clipping)",
    "gan": "standard GAN",
    "lsgan": "LSGAN",
}
METHOD_COLORS: dict[str, str] = {
    "wgan-gp": "tab:blue",
    "wgan-gp-rmsprop": "tab:purple",
    "wgan-clip": "tab:red",
    "gan": "tab:green",
    "lsgan": "tab:orange",
}
# The training stats drawn as curves, in panel order (mean ‖∇D(x̂)‖ is probed the same way for every loss).
CURVE_KEYS: tuple[str, ...] = ("wasserstein", "grad_norm", "critic_loss", "generator_loss")
# Metrics drawn over the evaluations besides the kind's first one, where the kind has them (Figure 3's
# second quality axis on labelled images: the classifier score).
CURVE_METRICS: tuple[str, ...] = ("score",)


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """``methods`` as a tuple if it is a non-empty list of distinct known methods; else a :class:`UserError`."""
    if not methods:
        raise UserError(f"--methods needs at least one method; choose from {', '.join(METHOD_CHOICES)}")
    unknown = [m for m in methods if m not in METHOD_RECIPES]
    if unknown:
        raise UserError(
            f"unknown method {unknown[0]!r} in --methods; choose from {', '.join(METHOD_CHOICES)}"
        )
    repeated = sorted({m for m in methods if list(methods).count(m) > 1})
    if repeated:
        raise UserError(f"--methods names {repeated[0]!r} twice; give each method once")
    return tuple(methods)


def parse_methods(text: str) -> tuple[str, ...]:
    """``--methods wgan-gp,wgan-clip`` → ``("wgan-gp", "wgan-clip")``, checked by :func:`check_methods`."""
    return check_methods([part.strip() for part in text.split(",") if part.strip()])
