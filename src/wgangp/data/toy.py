"""The paper's 2-d toy distributions, sampled exactly as the official ``gan_toy.py``.

Reference: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (arXiv:1704.00028), Fig. 1
and ``inf_train_gen`` in igul222/improved_wgan_training/gan_toy.py. Every point is drawn as the official
code draws it and then divided by the same constant:

==============  ==============================================================  =========  ===============
name            point before the division                                       divided    mode std after
==============  ==============================================================  =========  ===============
``8gaussians``  ``2·c + 0.02·N(0, I)``, ``c`` uniform over the 8 unit compass    1.414      0.02 / 1.414
                points ``(±1, 0), (0, ±1), (±1/√2, ±1/√2)``
``25gaussians`` ``(2x, 2y) + 0.05·N(0, I)``, ``x, y`` uniform over ``−2..2``      2.828      0.05 / 2.828
``swissroll``   ``make_swiss_roll(n, noise=0.25)[0][:, [0, 2]]`` (scikit-learn)   7.5        —
==============  ==============================================================  =========  ===============

The divisors are the official literals (1.414 and 2.828, not √2 and 2√2), so the 8 centres lie on the
circle of radius 2/1.414 ≈ 1.41443 and the 25-grid has spacing 2/2.828 ≈ 0.70721.

Determinism: all randomness comes from one CPU ``torch.Generator`` seeded from ``seed``; points are drawn
on the CPU and then moved to ``device``, so a seed gives the same points on every device.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["TOY_DATASETS", "ToySampler", "mode_centres", "mode_std"]

TOY_DATASETS: tuple[str, ...] = ("8gaussians", "25gaussians", "swissroll")

# (noise std before the division, the official divisor); swissroll's noise is scikit-learn's.
_NOISE_STD: dict[str, float] = {"8gaussians": 0.02, "25gaussians": 0.05, "swissroll": 0.25}
_DIVISOR: dict[str, float] = {"8gaussians": 1.414, "25gaussians": 2.828, "swissroll": 7.5}


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def _check_name(name: str) -> None:
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown toy dataset {name!r}; choose one of {', '.join(TOY_DATASETS)}")


def _raw_centres(name: str) -> Tensor | None:
    """Mode centres *before* the division, in the official order, float64 ``[K, 2]``."""
    if name == "8gaussians":
        r = 1.0 / math.sqrt(2.0)
        unit = [(1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)]
        return 2.0 * torch.tensor(unit, dtype=torch.float64)
    if name == "25gaussians":
        grid = [(2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)]
        return torch.tensor(grid, dtype=torch.float64)
    return None


def mode_centres(name: str) -> Tensor | None:
    """Centres of the mixture's modes after the official division, float32 ``[K, 2]``; ``None`` for swissroll.

    ``8gaussians``: ``2·c / 1.414`` for the 8 compass points ``c`` (K = 8, radius 2/1.414).
    ``25gaussians``: ``(2x, 2y) / 2.828`` for ``x, y ∈ {−2, …, 2}``, x-major order (K = 25).

    >>> mode_centres("8gaussians").shape
    torch.Size([8, 2])
    """
    _check_name(name)
    raw = _raw_centres(name)
    return None if raw is None else (raw / _DIVISOR[name]).float()


def mode_std(name: str) -> float | None:
    """Per-coordinate std of each mode after the division (``0.02/1.414``, ``0.05/2.828``); ``None`` for swissroll."""
    _check_name(name)
    if name == "swissroll":
        return None
    return _NOISE_STD[name] / _DIVISOR[name]


class ToySampler:
    """Endless fresh batches from one of the paper's toy distributions (see the module docstring).

    Every call draws new points, as ``gan_toy.py`` does for 8 gaussians and the swiss roll. For
    25 gaussians the official code draws one fixed set of 100 000 points (4 000 per mode) and cycles
    through shuffled batches of it; this sampler instead draws fresh points for every batch, each from a
    uniformly chosen mode: the same distribution, without the finite-dataset effects.

    Args:
        name: one of :data:`TOY_DATASETS`.
        batch_size: points per ``sampler()`` call.
        seed: seeds the sampler's own CPU ``torch.Generator`` (the global RNGs are never touched).
        device: where the returned batches live; the points themselves are drawn on the CPU.
        keep: rows of every batch this process keeps under data parallelism (``Shard.rows``): the whole
            batch is drawn, as one process draws it, and cut, so N processes see one process's data.

    Returns from ``sampler()``: float32 ``[batch_size, 2]`` (``keep``'s rows of it) on ``device``.

    >>> sampler = ToySampler("8gaussians", 256, seed=0)
    >>> sampler().shape
    torch.Size([256, 2])
    """

    def __init__(
        self,
        name: str,
        batch_size: int,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        keep: slice | None = None,
    ) -> None:
        _check_name(name)
        self.name = name
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.seed = int(seed)
        self.device = torch.device(device)
        self.keep = keep if keep is not None else slice(None)
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(self.seed)
        raw = _raw_centres(name)
        self._raw_centres = None if raw is None else raw.float()  # [K, 2]

    def __call__(self) -> Tensor:
        return self._draw(self.batch_size)[self.keep].to(self.device)

    def sample(self, n: int) -> Tensor:
        """``n`` fresh points, float32 ``[n, 2]`` on the sampler's device; advances the sampler's RNG."""
        return self._draw(_positive_int(n, "n")).to(self.device)

    def reference(self, n: int, *, seed: int) -> Tensor:
        """``n`` fixed points ``[n, 2]`` on the CPU, from their own ``seed``: the training stream is untouched."""
        return ToySampler(self.name, n, seed=seed).sample(n)

    def _draw(self, n: int) -> Tensor:
        """``n`` fresh points ``[n, 2]`` on the CPU."""
        if self._raw_centres is None:
            points = self._swiss_roll(n)
        else:
            k = self._raw_centres.shape[0]
            mode = torch.randint(k, (n,), generator=self.generator)  # [n]
            noise = torch.randn((n, 2), generator=self.generator)  # [n, 2]
            points = (self._raw_centres[mode] + _NOISE_STD[self.name] * noise) / _DIVISOR[self.name]
        return points

    def _swiss_roll(self, n: int) -> Tensor:
        from sklearn.datasets import make_swiss_roll

        # scikit-learn draws from NumPy; a seed taken from our generator keeps the whole stream
        # reproducible and resumable from the torch generator's state alone.
        np_seed = int(torch.randint(2**32 - 1, (1,), generator=self.generator, dtype=torch.int64))
        rng = np.random.RandomState(np_seed)
        data, _ = make_swiss_roll(n, noise=_NOISE_STD["swissroll"], random_state=rng)  # [n, 3]
        # The official code casts to float32 before dividing; keep that order.
        points = torch.from_numpy(data.astype(np.float32)[:, [0, 2]])  # [n, 2]
        return points / _DIVISOR["swissroll"]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the exact same stream: the name and the generator's state."""
        return {"name": self.name, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the following draws equal those the saved sampler would have made."""
        if state.get("name") != self.name:
            saved = state.get("name")
            raise ValueError(f"state is for toy dataset {saved!r}, this sampler draws {self.name!r}")
        # A checkpoint loaded with map_location="cuda" puts the state on the GPU; the generator is a CPU one.
        self.generator.set_state(state["generator"].to("cpu").clone())

    def __repr__(self) -> str:
        return f"ToySampler({self.name!r}, {self.batch_size}, seed={self.seed}, device={str(self.device)!r})"
