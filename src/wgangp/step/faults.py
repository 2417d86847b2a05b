"""Numerical faults: find a non-finite loss, penalty or gradient with one host sync, not one per value.

A NaN or inf in one update poisons every later one (Adam carries it in its moments), so the run loop stops
at the first one and keeps the last good checkpoint, or, with ``skip_nonfinite``, the trainer drops that
update before the optimizer sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["NONFINITE_TERMS", "all_finite", "first_nonfinite"]

# The terms of Algorithm 1 that are checked, in the order a message names them.
NONFINITE_TERMS = ("critic_loss", "penalty", "generator_loss")


def all_finite(tensors: Sequence[Tensor]) -> bool:
    """True when every element of every tensor is finite.

    One device-side reduction per tensor and one host sync in all (``bool`` of the stacked flags), so a
    GPU run pays one sync per call whatever the number of tensors.
    """
    if not tensors:
        return True
    flags = torch.stack([torch.isfinite(t).all() for t in tensors])  # [T]
    return bool(flags.all())  # note: the host sync


def first_nonfinite(stats: Mapping[str, Tensor]) -> str | None:
    """The first of :data:`NONFINITE_TERMS` in ``stats`` that is non-finite, or ``None``; one host sync.

    >>> first_nonfinite({"critic_loss": torch.tensor(1.0), "penalty": torch.tensor(float("nan"))})
    'penalty'
    """
    names = [name for name in NONFINITE_TERMS if name in stats]
    if not names:
        return None
    values = torch.stack([stats[name].detach().float().reshape(()) for name in names])  # [T]
    finite = torch.isfinite(values)
    if bool(finite.all()):  # note: the host sync, once per generator iteration
        return None
    return names[int((~finite).nonzero()[0, 0])]
