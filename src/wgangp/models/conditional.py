"""Class-conditional pieces: conditional BatchNorm for generators, AC-GAN and projection heads for critics.

References: the official ``gan_cifar_resnet.py`` with ``CONDITIONAL`` and ``ACGAN`` on (Gulrajani et al.
2017, arXiv:1704.00028, Table 3), its ``tflib`` conditional ``Batchnorm``; AC-GAN (Odena et al. 2017,
arXiv:1610.09585); the projection discriminator (Miyato & Koyama 2018, arXiv:1802.05637).

- :class:`ConditionalBatchNorm` — ``y = γ[c]·(x − μ)/√(σ² + eps) + β[c]``: batch statistics shared by all
  classes (an inner ``nn.BatchNorm`` without affine, so :func:`~wgangp.models.global_bn.to_global_batchnorm`
  converts it like any other), per-class scale and shift tables ``[n_classes, C]`` starting at 1 and 0.
- :class:`LabelSequential` — a ``Sequential`` that hands the labels to the children that take them.
- :class:`CriticHeads` — beside a critic's Wasserstein head ``ψ`` on its features ``φ(x)`` (the pooled
  features of the ResNet, the flattened last map of the DCGAN, the last hidden layer of the MLP):

  * ``"acgan"``: a classifier ``Linear(F → K)``; the score stays ``ψ(φ(x))`` and takes no label;
  * ``"projection"``: a class embedding ``E [K, F]``; ``D(x, y) = ψ(φ(x)) + E[y]·φ(x)``.

The models' API (``n_classes > 0``): ``generator(z, y)``, ``critic(x, y) -> [N]`` (the AC-GAN critic
ignores ``y``) and, for AC-GAN, ``critic.score_and_logits(x) -> ([N], [N, K])`` from one pass through the
body. The gradient penalty calls ``critic(x̂, y)`` and so differentiates the Wasserstein score alone.
"""

from __future__ import annotations

import numbers
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CONDITIONINGS",
    "ClassAwareCritic",
    "ClassAwareGenerator",
    "ConditionalBatchNorm",
    "Conditioning",
    "CriticHeads",
    "LabelSequential",
    "check_label_input",
    "check_n_classes",
    "norm_1d",
    "one_hot_concat",
    "run_with_labels",
]

Conditioning = Literal["acgan", "projection"]
CONDITIONINGS: tuple[str, ...] = ("acgan", "projection")


class ConditionalBatchNorm(nn.Module):
    """BatchNorm with per-class affine parameters (tflib's ``Batchnorm(..., labels=...)``).

    ``y = γ[c]·(x − μ_B)/√(σ²_B + eps) + β[c]`` with ``μ_B, σ²_B`` per channel over the whole batch (all
    classes together; running averages in eval mode) and ``γ, β`` rows of ``[n_classes, C]`` tables
    initialised to 1 and 0 (so the layer starts as plain BatchNorm). Shapes: ``x [N, C]`` (``dims=1``) or
    ``[N, C, H, W]`` (``dims=2``), labels ``[N]`` int64 -> ``x``'s shape.

    >>> ConditionalBatchNorm(4, 10)(torch.randn(3, 4, 2, 2), torch.tensor([0, 9, 3])).shape
    torch.Size([3, 4, 2, 2])
    """

    takes_labels = True

    def __init__(
        self,
        num_features: int,
        n_classes: int,
        *,
        dims: Literal[1, 2] = 2,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be ≥ 1, got {n_classes}")
        batch_norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        self.norm = batch_norm(num_features, eps=eps, momentum=momentum, affine=False)
        self.weight = nn.Parameter(torch.ones(n_classes, num_features))  # γ [K, C]
        self.bias = nn.Parameter(torch.zeros(n_classes, num_features))  # β [K, C]

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.ndim - 2)  # [N, C, 1, 1] for maps
        scale = F.embedding(labels, self.weight).view(shape)
        shift = F.embedding(labels, self.bias).view(shape)
        return torch.addcmul(shift, self.norm(x), scale)


class LabelSequential(nn.Sequential):
    """``nn.Sequential`` whose ``forward(x, labels)`` passes ``labels`` to children with ``takes_labels``."""

    takes_labels = True

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        for module in self:
            x = run_with_labels(module, x, labels)
        return x


def run_with_labels(module: nn.Module, x: Tensor, labels: Tensor | None) -> Tensor:
    """``module(x, labels)`` if the module takes labels, else ``module(x)``."""
    if getattr(module, "takes_labels", False):
        if labels is None:
            raise ValueError("this conditional layer needs labels")
        return module(x, labels)
    return module(x)


def check_label_input(n_classes: int, labels: Tensor | None, n: int, *, needed: bool = True) -> None:
    """Shape checks only (no value read back to the host, so CUDA-graph capture works): labels ``[n]``."""
    if n_classes == 0:
        if labels is not None:
            raise ValueError("this model is unconditional (n_classes=0); call it without labels")
        return
    if labels is None:
        if needed:
            raise ValueError(f"this model is class-conditional (n_classes={n_classes}); pass labels [N]")
        return
    if labels.shape != (n,) or labels.is_floating_point():
        raise ValueError(
            f"labels must be integer class indices [{n}]; got {labels.dtype} {tuple(labels.shape)}"
        )


def check_n_classes(n_classes: object) -> int:
    """``n_classes`` as an int ≥ 0 (0: unconditional), else ``ValueError``."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 0:
        raise ValueError(f"n_classes must be an int ≥ 0 (0: unconditional), got {n_classes!r}")
    return int(n_classes)


def one_hot_concat(z: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """``[z, onehot(y)]``: ``[N, L], [N] -> [N, L + K]``; the next Linear's extra columns are the class embedding."""
    return torch.cat([z, F.one_hot(labels, n_classes).to(z.dtype)], dim=1)


def norm_1d(kind: str, features: int, n_classes: int = 0) -> nn.Module:
    """A generator's norm on ``[N, features]``: BatchNorm1d, its conditional version (``n_classes > 0``), or none."""
    if kind != "batch":
        return nn.Identity()
    return ConditionalBatchNorm(features, n_classes, dims=1) if n_classes else nn.BatchNorm1d(features)


class ClassAwareGenerator(nn.Module):
    """What the DCGAN-shaped generators share about classes: ``z → input → [top, 4, 4] → body → output, tanh``.

    A subclass calls :meth:`label_plumbing` first, then builds ``input`` and ``body`` with the returned
    ``Sequential`` kind and norm classes, and ``output``. With BatchNorm the labels enter every norm
    (conditional BatchNorm); without, they join z one-hot. ``forward(z)`` unconditional, ``forward(z, y)`` if not.
    """

    n_classes: int
    label_norms: bool
    top: int
    input: nn.Module
    body: nn.Module
    output: nn.Module

    def label_plumbing(
        self, latent_dim: int, n_classes: int, norm: str
    ) -> tuple[int, int, type[nn.Sequential]]:
        """Set ``n_classes``/``label_norms``; return ``(input dim, classes of the norms, Sequential kind)``."""
        self.n_classes = check_n_classes(n_classes)
        self.label_norms = bool(self.n_classes) and norm == "batch"  # else labels join z (one-hot)
        in_dim = latent_dim + (self.n_classes if self.n_classes and not self.label_norms else 0)
        norm_classes = self.n_classes if self.label_norms else 0
        return in_dim, norm_classes, LabelSequential if self.label_norms else nn.Sequential

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        check_label_input(self.n_classes, labels, z.shape[0])
        if labels is not None and self.label_norms:
            x = torch.relu(self.input(z, labels)).view(z.shape[0], self.top, 4, 4)
            return torch.tanh(self.output(self.body(x, labels)))
        if labels is not None:
            z = one_hot_concat(z, labels, self.n_classes)  # [N, latent_dim + K]
        x = torch.relu(self.input(z)).view(z.shape[0], self.top, 4, 4)  # [N, top, 4, 4]
        return torch.tanh(self.output(self.body(x)))  # [N, C, R, R]


class CriticHeads(nn.Module):
    """The class-aware heads on a critic's features ``φ(x) [N, F]`` (see the module docstring).

    ``"acgan"``: ``classifier`` Linear ``F → K`` (Glorot weights, zero bias, tflib's default Linear).
    ``"projection"``: ``embed`` ``[K, F]`` (Glorot), and ``score(base, h, y) = base + Σ_f E[y]_f·h_f``.
    """

    def __init__(self, features: int, n_classes: int, conditioning: Conditioning) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be ≥ 1, got {n_classes}")
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)}; got {conditioning!r}")
        self.conditioning, self.n_classes = conditioning, n_classes
        if conditioning == "acgan":
            self.classifier = nn.Linear(features, n_classes)
            nn.init.xavier_uniform_(self.classifier.weight)
            nn.init.zeros_(self.classifier.bias)
        else:
            self.embed = nn.Parameter(torch.empty(n_classes, features))
            nn.init.xavier_uniform_(self.embed)

    def score(self, base: Tensor, h: Tensor, labels: Tensor | None) -> Tensor:
        """The conditional score ``[N]`` from the Wasserstein head's ``base [N]`` and features ``h [N, F]``."""
        if self.conditioning == "acgan":
            return base  # AC-GAN: the score sees no label
        if labels is None:
            raise ValueError("a projection critic needs labels: critic(x, y)")
        return base + (F.embedding(labels, self.embed) * h.flatten(1)).sum(1)

    def logits(self, h: Tensor) -> Tensor:
        """AC-GAN's class logits ``[N, K]`` of features ``h [N, F]``."""
        if self.conditioning != "acgan":
            raise ValueError("only an AC-GAN critic (conditioning='acgan') has a classifier head")
        return self.classifier(h.flatten(1))


class ClassAwareCritic(nn.Module):
    """What every critic shares about classes: ``forward(x, labels)`` and AC-GAN's ``score_and_logits``.

    A subclass defines ``features(x) -> φ(x) [N, F]`` and ``score_head(φ) -> [N]`` (its Wasserstein head),
    and sets ``n_classes`` and ``heads`` (:class:`CriticHeads`, or ``None`` when unconditional). The
    unconditional score is ``score_head(features(x))``: the same operations as the plain network's forward.
    """

    n_classes: int
    heads: CriticHeads | None

    def features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def score_head(self, h: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.heads is None:
            check_label_input(0, labels, x.shape[0])
            return self.score_head(self.features(x))  # [N]
        check_label_input(self.n_classes, labels, x.shape[0], needed=self.heads.conditioning == "projection")
        h = self.features(x)  # [N, F]
        return self.heads.score(self.score_head(h), h, labels)

    def score_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """AC-GAN: the score ``[N]`` and class logits ``[N, K]`` from one pass through the body."""
        if self.heads is None:
            raise ValueError("an unconditional critic has no classifier head")
        h = self.features(x)
        return self.score_head(h), self.heads.logits(h)
