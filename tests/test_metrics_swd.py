"""Tests for ``wgangp.metrics.swd``: the pyramid, the 1-D core against POT, and SWD's behaviour on images."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from wgangp.errors import UserError
from wgangp.metrics.swd import _up, laplacian_pyramid, sliced_wasserstein, sliced_wasserstein_1d_mean


def smooth_images(n: int, channels: int = 3, size: int = 32, seed: int = 0) -> Tensor:
    """Images with structure at several scales: noise upsampled from 4×4 and 8×8, plus fine noise, in [−1, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = F.interpolate(
        torch.randn(n, channels, 4, 4, generator=g), size=size, mode="bicubic", align_corners=False
    )
    middle = F.interpolate(
        torch.randn(n, channels, 8, 8, generator=g), size=size, mode="bilinear", align_corners=False
    )
    fine = torch.randn(n, channels, size, size, generator=g)
    return torch.tanh(0.6 * coarse + 0.4 * middle + 0.15 * fine)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype) / sigma) ** 2)
    taps = taps / taps.sum()
    c = x.shape[1]
    x = F.conv2d(
        F.pad(x, (radius, radius, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c
    )
    return F.conv2d(
        F.pad(x, (0, 0, radius, radius), mode="reflect"), taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c
    )


def translated(x: Tensor, shift: int) -> Tensor:
    """Content moved ``shift`` pixels right and down; the uncovered border is background (−1)."""
    out = torch.full_like(x, -1.0)
    out[:, :, shift:, shift:] = x[:, :, : x.shape[2] - shift, : x.shape[3] - shift]
    return out


def test_the_pyramid_sums_back_to_the_images() -> None:
    x = smooth_images(4, size=32).double()

    pyramid = laplacian_pyramid(x, 3)

    assert [tuple(level.shape[2:]) for level in pyramid] == [(32, 32), (16, 16), (8, 8)]
    rebuilt = pyramid[-1]
    for level in reversed(pyramid[:-1]):
        rebuilt = level + _up(rebuilt, (level.shape[2], level.shape[3]))
    torch.testing.assert_close(rebuilt, x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_1d_core_equals_pots_sliced_w1_with_the_same_directions(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    a, b = (
        torch.randn(300, 6, generator=g, dtype=torch.float64),
        1.5 * torch.rand(300, 6, generator=g).double(),
    )
    theta = torch.randn(6, 200, generator=g, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)

    ours = sliced_wasserstein_1d_mean(a, b, theta, chunk=64)
    # POT with p=1: mean over projections of W₁, the same quantity.
    theirs = ot.sliced_wasserstein_distance(a.numpy(), b.numpy(), projections=theta.numpy(), p=1)

    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("channels", "size", "keys"),
    [
        (1, 8, ["swd_8x8"]),
        (3, 16, ["swd_16x16"]),
        (3, 32, ["swd_32x32", "swd_16x16"]),
        (1, 64, ["swd_64x64", "swd_32x32", "swd_16x16"]),
        (3, 20, ["swd_20x20"]),
    ],
)
def test_levels_and_zero_for_identical_sets(channels: int, size: int, keys: list[str]) -> None:
    x = smooth_images(16, channels, size)

    result = sliced_wasserstein(x, x.clone(), patches_per_image=16, directions=64)

    assert list(result) == [*keys, "swd_mean"]
    assert all(value == 0.0 for value in result.values())


def test_two_halves_of_one_distribution_are_close_and_closer_with_more_patches() -> None:
    x = smooth_images(256, seed=1)
    first, second = x[:128], x[128:]

    fewer = sliced_wasserstein(first, second, patches_per_image=8, directions=128)
    same = sliced_wasserstein(first, second, patches_per_image=64, directions=128)
    blurred = sliced_wasserstein(first, gaussian_blur(second, 2.0), patches_per_image=64, directions=128)

    # What remains between two samples of one distribution is the finite-sample error, which shrinks.
    assert 0 < same["swd_mean"] < 0.7 * fewer["swd_mean"]
    assert same["swd_32x32"] < 0.4 * blurred["swd_32x32"]  # blur removes the finest band most


@pytest.mark.parametrize(
    ("change", "amounts"),
    [(gaussian_blur, [0.5, 1.0, 2.0]), (translated, [1, 3, 6])],
    ids=["blur", "shift"],
)
def test_swd_grows_with_the_amount_of_change(change: object, amounts: list[float]) -> None:
    x = smooth_images(128, seed=2)
    reference = smooth_images(128, seed=3)
    assert callable(change)

    values = [
        sliced_wasserstein(change(x, amount), reference, patches_per_image=32, directions=128)["swd_mean"]
        for amount in amounts
    ]
    baseline = sliced_wasserstein(x, reference, patches_per_image=32, directions=128)["swd_mean"]

    assert baseline < values[0] < values[1] < values[2]


def test_invariant_to_a_per_channel_affine_change_of_intensities() -> None:
    x = smooth_images(32, seed=4).double()
    scale, offset = (
        torch.tensor([0.5, 1.0, 2.0]).view(1, 3, 1, 1),
        torch.tensor([0.1, -0.2, 0.0]).view(1, 3, 1, 1),
    )

    result = sliced_wasserstein(x * scale.double() + offset.double(), x, patches_per_image=16, directions=64)

    assert all(abs(value) < 1e-9 for value in result.values())


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    x, y = smooth_images(32, seed=5), smooth_images(32, seed=6)

    first = sliced_wasserstein(x, y, seed=3, patches_per_image=16, directions=64)
    again = sliced_wasserstein(x, y, seed=3, patches_per_image=16, directions=64)
    other = sliced_wasserstein(x, y, seed=4, patches_per_image=16, directions=64)

    assert first == again
    assert first["swd_mean"] != other["swd_mean"]
    assert abs(first["swd_mean"] - other["swd_mean"]) < 0.5 * first["swd_mean"]  # the seed only adds noise


_X = smooth_images(4, size=16)

BAD = [
    pytest.param(_X, _X[:3], {}, "shapes differ", id="batch"),
    pytest.param(_X, _X[:, :1], {}, "shapes differ", id="channels"),
    pytest.param(_X, F.interpolate(_X, size=8), {}, "shapes differ", id="size"),
    pytest.param(_X[:, :, :7, :7], _X[:, :, :7, :7], {}, "at least 8 pixels", id="too-small"),
    pytest.param(_X[0], _X[0], {}, r"\[N, C, H, W\]", id="unbatched"),
    pytest.param((_X > 0).long(), (_X > 0).long(), {}, "float images", id="integer"),
    pytest.param(_X, _X, {"patch_size": 6}, "odd", id="even-patch"),
    pytest.param(_X * math.nan, _X, {}, "NaN", id="nan"),
]


@pytest.mark.parametrize(("fake", "real", "kwargs", "match"), BAD)
def test_bad_inputs_raise_user_error(fake: Tensor, real: Tensor, kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(UserError, match=match):
        sliced_wasserstein(fake, real, **kwargs)
