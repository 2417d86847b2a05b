"""Lazy regularisation: the penalty on every k-th critic step only, with its weight multiplied by k.

Karras et al. 2020 (StyleGAN2, arXiv:1912.04958, App. B "lazy regularization"): the regulariser's
gradient changes slowly, so computing it every k-th minibatch with weight ×k keeps the same expected
update at a fraction of the cost. ``k = 1`` is the plain penalty, exactly.

StyleGAN2 runs the penalty as a *separate* optimizer step, so k minibatches take k + 1 steps; it
therefore scales Adam's learning rate by ``c = k/(k+1)`` and its betas to ``β^c``. Here the penalty is
added to every k-th critic loss (no extra step), so the rescale is optional (``lazy_adam_rescale``).
"""

from __future__ import annotations

__all__ = ["lazy_adam_hyperparameters", "lazy_penalty_weight", "penalty_schedule"]


def _check_every(every: int) -> None:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"penalty_every must be an int >= 1; got {every!r}")


def penalty_schedule(first_critic_step: int, n_critic: int, every: int) -> tuple[bool, ...]:
    """Which of the ``n_critic`` critic steps starting at global index ``first_critic_step`` take the penalty.

    Step ``t`` (counted over the whole run) is penalised when ``t % every == 0``, so the rate is exactly
    ``1/every`` however ``every`` and ``n_critic`` divide. A pattern repeats every ``every`` iterations.

    >>> penalty_schedule(5, 5, 4)
    (False, False, False, True, False)
    """
    _check_every(every)
    return tuple((first_critic_step + i) % every == 0 for i in range(n_critic))


def lazy_penalty_weight(weight: float, every: int) -> float:
    """``λ·k``: the weight of the penalty on the steps that take it (StyleGAN2's ``r1_gamma * reg_interval``)."""
    _check_every(every)
    return weight * every


def lazy_adam_hyperparameters(
    lr: float, betas: tuple[float, float], every: int
) -> tuple[float, tuple[float, float]]:
    """StyleGAN2's rescale for a regulariser run every ``k`` steps: ``lr·c`` and ``β^c`` with ``c = k/(k+1)``.

    >>> lr, (beta1, beta2) = lazy_adam_hyperparameters(1e-4, (0.5, 0.9), 4)  # c = 0.8
    >>> round(lr, 12), round(beta1, 4), round(beta2, 4)
    (8e-05, 0.5743, 0.9192)
    """
    _check_every(every)
    c = every / (every + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)
