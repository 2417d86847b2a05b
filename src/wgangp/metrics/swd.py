"""Sliced Wasserstein distance between image sets on Laplacian-pyramid patches (Karras et al. 2018).

Progressive GAN (Karras, Aila, Laine, Lehtinen, ICLR 2018, §5 and App. D) compares the local structure of
two image sets at every scale: each image's Laplacian pyramid is built (5×5 binomial filter, ×½ per level,
the last level the low-pass residual), 7×7 patches (descriptors) are cut at random positions of each level,
each level's descriptors are normalised by their per-channel mean and standard deviation, and the sliced
Wasserstein distance between the two sets of descriptors is taken over random unit directions:

    SWD(A, B) = mean_θ mean_q |sort(A·θ)_q − sort(B·θ)_q|,   θ ~ uniform on the unit sphere,

reported ×10³ per level and averaged over levels. The finest levels measure sharpness and noise, the
coarsest the colours and large shapes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from wgangp.errors import UserError

__all__ = ["laplacian_pyramid", "sliced_wasserstein", "sliced_wasserstein_1d_mean"]

# The binomial 5×5 filter of the paper's code (outer product of [1, 4, 6, 4, 1] / 16).
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: Tensor, gain: float = 1.0) -> Tensor:
    """Depthwise 5×5 binomial filter with mirror padding: ``[N, C, H, W] -> [N, C, H, W]``."""
    c = x.shape[1]
    kernel = (torch.outer(_BINOMIAL, _BINOMIAL) * gain).to(x.device, x.dtype).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def _down(x: Tensor) -> Tensor:
    return _blur(x)[:, :, ::2, ::2]  # [N, C, ⌈H/2⌉, ⌈W/2⌉]


def _up(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero-insertion ×2 then the filter ×4 (which keeps the mean), cropped to ``size``."""
    n, c, h, w = x.shape
    spread = x.new_zeros(n, c, 2 * h, 2 * w)
    spread[:, :, ::2, ::2] = x
    return _blur(spread, gain=4.0)[:, :, : size[0], : size[1]]


def laplacian_pyramid(images: Tensor, levels: int) -> list[Tensor]:
    """``levels`` band-pass images, finest first, the last one the low-pass residual: ``[N, C, H/2^l, W/2^l]``.

    ``level_l = G_l − up(G_{l+1})`` with ``G_0 = images`` and ``G_{l+1} = down(G_l)``; summing them back up
    recovers the images exactly.
    """
    pyramid, current = [], images
    for _ in range(levels - 1):
        smaller = _down(current)
        pyramid.append(current - _up(smaller, (current.shape[2], current.shape[3])))
        current = smaller
    pyramid.append(current)
    return pyramid


def _patches(level: Tensor, per_image: int, size: int, generator: torch.Generator) -> Tensor:
    """``per_image`` random ``size×size`` patches fully inside each image: ``[N·per_image, C·size²]``."""
    n, _, h, w = level.shape
    image = torch.arange(n).repeat_interleave(per_image)  # [P]
    top = torch.randint(0, h - size + 1, (n * per_image,), generator=generator)
    left = torch.randint(0, w - size + 1, (n * per_image,), generator=generator)
    offsets = torch.arange(size)
    rows = (top[:, None] + offsets).to(level.device)  # [P, size]
    cols = (left[:, None] + offsets).to(level.device)
    patches = level[
        image.to(level.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]
    ]  # [P, s, s, C]
    return patches.permute(0, 3, 1, 2)  # [P, C, s, s]


def _normalised(descriptors: Tensor) -> Tensor:
    """Per-channel standardisation over all descriptors of one set and level: ``[P, C, s, s] -> [P, C·s²]``."""
    mean = descriptors.mean(dim=(0, 2, 3), keepdim=True)
    std = descriptors.std(dim=(0, 2, 3), keepdim=True, unbiased=False).clamp_min(1e-12)
    return ((descriptors - mean) / std).flatten(1)


def sliced_wasserstein_1d_mean(a: Tensor, b: Tensor, directions: Tensor, chunk: int = 128) -> Tensor:
    """``mean_θ W₁(a·θ, b·θ)`` for two equal-size point sets ``[P, D]`` and unit directions ``[D, K]``.

    Exact in 1-D: ``W₁`` between two empirical measures of ``P`` atoms each is the mean absolute difference
    of their sorted values. Computed ``chunk`` directions at a time to bound memory at ``P·chunk``.
    """
    total = a.new_zeros(())
    for start in range(0, directions.shape[1], chunk):
        theta = directions[:, start : start + chunk]
        projected_a = torch.sort(a @ theta, dim=0).values  # [P, chunk]
        projected_b = torch.sort(b @ theta, dim=0).values
        total = total + (projected_a - projected_b).abs().mean(dim=0).sum()
    return total / directions.shape[1]


def sliced_wasserstein(
    fake: Tensor,
    real: Tensor,
    *,
    seed: int = 0,
    patches_per_image: int = 128,
    patch_size: int = 7,
    directions: int = 512,
    min_resolution: int = 16,
) -> dict[str, float]:
    """Karras et al.'s SWD ×10³ per Laplacian level, ``{"swd_HxW": ..., ..., "swd_mean": ...}``.

    ``SWD_l = 10³ · mean_θ W₁(A_l·θ, B_l·θ)`` where ``A_l``, ``B_l`` are the normalised ``patch_size²·C``
    patch descriptors of level ``l`` of ``fake`` and ``real``; ``swd_mean`` averages the levels (Progressive
    GAN, ICLR 2018, §5 / App. D: 7×7 patches, 128 per image, 4×128 directions, levels down to 16×16).

    Args:
        fake, real: float images ``[N, C, H, W]`` in [−1, 1], of the same shape, any ``C``, ``H, W ≥ 8``.
            The per-channel normalisation makes the value invariant to a per-channel affine change of
            intensities (a brighter or higher-contrast set is *not* penalised; sharpness and structure are).
        seed: seeds the patch positions (the same for both sets, so ``SWD(x, x) = 0``) and the directions.
        patches_per_image: descriptors per image and level (128 in the paper).
        patch_size: odd patch side (7).
        directions: random unit directions (512 = 4 repeats × 128 in the paper's code).
        min_resolution: the coarsest level's smaller side is at least this (16 in the paper's code); images
            smaller than ``2·min_resolution`` have one level, their own 7×7 patches.

    Memory: two ``[N·patches_per_image, C·patch_size²]`` descriptor sets per level (N = 10⁴ RGB: ≈ 0.75 GB each
    in fp32) on the images' device.

    Example:
        >>> x = torch.rand(64, 3, 32, 32) * 2 - 1
        >>> sliced_wasserstein(x, x)["swd_mean"]
        0.0
    """
    for name, x in (("fake", fake), ("real", real)):
        if x.ndim != 4:
            raise UserError(
                f"sliced_wasserstein: {name} must be images [N, C, H, W]; got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise UserError(
                f"sliced_wasserstein: {name} must be float images in [-1, 1]; got dtype {x.dtype}"
            )
    if fake.shape != real.shape:
        raise UserError(
            f"sliced_wasserstein: fake and real shapes differ: {tuple(fake.shape)} vs {tuple(real.shape)}"
        )
    n, _, h, w = fake.shape
    if patch_size < 1 or patch_size % 2 == 0:
        raise UserError(f"sliced_wasserstein: patch_size must be odd and positive; got {patch_size}")
    if min(h, w) < max(8, patch_size):
        raise UserError(
            f"sliced_wasserstein: images must be at least {max(8, patch_size)} pixels a side; got {h}×{w}"
        )
    if n < 1 or patches_per_image < 1 or directions < 1:
        raise UserError("sliced_wasserstein: needs at least one image, one patch per image and one direction")
    if not (bool(torch.isfinite(fake).all()) and bool(torch.isfinite(real).all())):
        raise UserError("sliced_wasserstein: images contain NaN or inf")

    levels = 1
    size = (h, w)
    while min(math.ceil(size[0] / 2), math.ceil(size[1] / 2)) >= max(min_resolution, patch_size):
        size = (math.ceil(size[0] / 2), math.ceil(size[1] / 2))
        levels += 1

    with torch.no_grad():
        pyramids = [laplacian_pyramid(x, levels) for x in (fake, real)]
        draws = torch.Generator().manual_seed(seed)
        result: dict[str, float] = {}
        for level_fake, level_real in zip(*pyramids, strict=True):
            # The same positions for both sets: a fresh generator state per level, replayed for real.
            state = draws.get_state()
            a = _normalised(_patches(level_fake, patches_per_image, patch_size, draws))
            draws.set_state(state)
            b = _normalised(_patches(level_real, patches_per_image, patch_size, draws))
            theta = torch.randn(a.shape[1], directions, generator=draws, dtype=torch.float64)
            theta = (theta / theta.norm(dim=0, keepdim=True)).to(a.device, a.dtype)  # unit directions [D, K]
            swd = sliced_wasserstein_1d_mean(a, b, theta)
            result[f"swd_{level_fake.shape[2]}x{level_fake.shape[3]}"] = 1e3 * float(swd)
        result["swd_mean"] = sum(result.values()) / levels
    return result
