"""Reference computations the penalty tests share."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def labelled_penalty_reference(
    critic: Callable[[Tensor, Tensor], Tensor], points: Tensor, labels: Tensor
) -> tuple[Tensor, Tensor]:
    """``(mean (‖∇ₓD(x̂ᵢ, yᵢ)‖ − 1)², norms [N])`` taken one sample at a time, its label held fixed."""
    norms = []
    for i in range(points.shape[0]):
        p = points[i : i + 1].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(p, labels[i : i + 1]).sum(), p)
        norms.append(grad.norm())
    stacked = torch.stack(norms)
    return ((stacked - 1) ** 2).mean(), stacked
