"""Per-feature standardisation of vector data: ``x' = (x − μ) / σ`` with the training data's ``μ``, ``σ``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["FeatureScaling"]


class FeatureScaling:
    """``μ``, ``σ`` per feature of the training set (``σ`` of a constant feature: 1), fitted once.

    A run with ``standardize = true`` trains on ``x'``; its checkpoints hold ``μ`` and ``σ``, so its
    samples are mapped back to the data's units (``x = x'·σ + μ``) without the data at hand.

    >>> s = FeatureScaling()
    >>> x = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    >>> s.fit_transform(x)
    tensor([[-0.7071,  0.0000],
            [ 0.7071,  0.0000]])
    """

    def __init__(self) -> None:
        self.mean: Tensor | None = None  # [D]
        self.std: Tensor | None = None  # [D]

    @property
    def fitted(self) -> bool:
        return self.mean is not None

    def fit_transform(self, x: Tensor) -> Tensor:
        """``x [N, D]`` standardised; fits ``μ``, ``σ`` on ``x`` unless already fitted (a saved run's)."""
        if self.mean is None or self.std is None:
            x64 = x.double()
            std = x64.std(dim=0)
            self.mean = x64.mean(dim=0).float()
            self.std = torch.where(std > 0, std, torch.ones_like(std)).float()
        return (x - self.mean) / self.std

    def inverse(self, x: Tensor) -> Tensor:
        """Model-space samples ``[N, D]`` back in the data's units."""
        if self.mean is None or self.std is None:
            raise RuntimeError("FeatureScaling used before it was fitted or loaded")
        return x * self.std.to(x.device) + self.mean.to(x.device)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.std = state["mean"], state["std"]
