"""An unsupervised categorical code in the generator's latent (InfoGAN, Chen et al. 2016, arXiv:1606.03657).

``latent_codes = K``: the code of a latent ``z ~ N(0, I)`` is ``c(z) = argmax(z_1 … z_K)``, uniform over
the K categories because the entries are i.i.d.; the generator takes it like a class label (its
conditional BatchNorm, or one-hot beside z), so it has K sets of normalisation parameters with which to
split the data into K modes. The critic gets the AC-GAN classifier head (here InfoGAN's ``Q(c | x)``),
and the critic and the generator both minimise ``λ_I · CE(Q(G(z)), c(z))`` (``info_scale``): InfoGAN's
lower bound on the mutual information between the code and the sample (``wgangp.step.update``). No
labels are read: the K categories are whatever the training makes of them.

Deriving the code from z rather than drawing it beside z keeps ``G`` a function of z alone, so sampling,
the EMA copy, evaluation, the CUDA graph and torchrun treat the coded generator like any other.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["CodedGenerator", "latent_code", "with_code"]


def latent_code(z: Tensor, k: int) -> Tensor:
    """``c(z) = argmax(z[:, :k])``: int64 ``[N]`` in ``0 … k−1``, uniform for ``z ~ N(0, I)``."""
    return z[:, :k].argmax(1)


def with_code(z: Tensor, codes: Tensor, k: int) -> Tensor:
    """``z`` with its first ``k`` entries permuted so that ``c(z) = codes``: ``[N, L], [N] -> [N, L]``.

    Each row swaps its largest of the first k entries with entry ``codes[i]``; as the entries are
    exchangeable, the result is distributed as z given its code.

    >>> import torch
    >>> latent_code(with_code(torch.randn(4, 6), torch.tensor([0, 1, 2, 2]), 3), 3).tolist()
    [0, 1, 2, 2]
    """
    if codes.shape != (z.shape[0],) or bool(((codes < 0) | (codes >= k)).any()):
        raise ValueError(f"codes must be [{z.shape[0]}] in 0..{k - 1}")
    z = z.clone()
    rows = torch.arange(z.shape[0], device=z.device)
    top = latent_code(z, k)
    codes = codes.to(z.device)
    largest, at_code = z[rows, top].clone(), z[rows, codes].clone()
    z[rows, codes], z[rows, top] = largest, at_code
    return z


class CodedGenerator(nn.Module):
    """``G(z) = inner(z, c(z))``: a class-conditional generator driven by the latent's own code.

    >>> import torch
    >>> from wgangp.models.mlp import MLPGenerator
    >>> g = CodedGenerator(MLPGenerator(4, 2, width=8, depth=1, n_classes=3), 3)
    >>> g(torch.randn(5, 4)).shape
    torch.Size([5, 2])
    """

    def __init__(self, inner: nn.Module, codes: int) -> None:
        super().__init__()
        if codes < 2:
            raise ValueError(f"a code needs at least 2 categories; got {codes}")
        self.inner, self.codes = inner, codes

    def forward(self, z: Tensor) -> Tensor:
        return self.inner(z, latent_code(z, self.codes))
