"""BENCHMARK-ONLY networks: the paper's CIFAR-10 DCGAN and ResNet, shaped as in the official code.

These exist so ``step_speed.py`` can time image-sized steps before the package ships its own image
models; they are not part of ``wgangp`` and are not tested for training quality. Shapes follow
igul222/improved_wgan_training (``gan_cifar.py``'s DCGAN and ``gan_cifar_resnet.py``, DIM = 128) and
the paper's App. F. Critics have no normalisation (the penalty needs per-sample gradients).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

LATENT = 128


def _mean_pool(x: Tensor) -> Tensor:
    """2×2 mean pooling as a reshape-mean: its backward is cheaper than avg_pool2d's (benchmarks/RESULTS.md)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean((3, 5))


class DCGANGenerator(nn.Module):
    """FC 128→4·4·512 +BN+ReLU, deconv5 s2 512→256→128 +BN+ReLU, →3, tanh: ``[N, 128] -> [N, 3, 32, 32]``."""

    def __init__(self, dim: int = 128) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(LATENT, 4 * 4 * 4 * dim), nn.BatchNorm1d(4 * 4 * 4 * dim), nn.ReLU()
        )

        def up(cin: int, cout: int) -> nn.ConvTranspose2d:
            return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)

        self.net = nn.Sequential(
            up(4 * dim, 2 * dim), nn.BatchNorm2d(2 * dim), nn.ReLU(),
            up(2 * dim, dim), nn.BatchNorm2d(dim), nn.ReLU(),
            up(dim, 3), nn.Tanh(),
        )  # fmt: skip
        self.dim = dim

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.fc(z).reshape(-1, 4 * self.dim, 4, 4))


class DCGANCritic(nn.Module):
    """conv5 s2 3→128→256→512 with LeakyReLU 0.2, then FC: ``[N, 3, 32, 32] -> [N]``."""

    def __init__(self, dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, dim, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
            nn.Conv2d(dim, 2 * dim, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * dim, 4 * dim, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.fc = nn.Linear(4 * 4 * 4 * dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.net(x).flatten(1)).squeeze(-1)


class _UpBlock(nn.Module):
    """Pre-activation ResBlock with nearest ×2 upsampling (BN in the generator, as in the paper)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(dim), nn.BatchNorm2d(dim)
        self.conv1, self.conv2 = nn.Conv2d(dim, dim, 3, padding=1), nn.Conv2d(dim, dim, 3, padding=1)
        self.shortcut = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        skip = self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2.0, mode="nearest")
        return skip + self.conv2(F.relu(self.bn2(self.conv1(h))))


class _DownBlock(nn.Module):
    """Pre-activation ResBlock of the critic, no normalisation; ``down`` halves the resolution."""

    def __init__(self, dim: int, *, down: bool, first: bool = False, cin: int | None = None) -> None:
        super().__init__()
        cin = cin or dim
        self.down, self.first = down, first
        self.conv1, self.conv2 = nn.Conv2d(cin, dim, 3, padding=1), nn.Conv2d(dim, dim, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, dim, 1) if (down or cin != dim) else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        if self.down:
            h = _mean_pool(h)
        if self.shortcut is None:
            return x + h
        skip = _mean_pool(x) if self.down else x
        return self.shortcut(skip) + h


class ResNetGenerator(nn.Module):
    """FC 128→4·4·128, 3 up-ResBlocks, BN+ReLU, conv3 →3, tanh: ``[N, 128] -> [N, 3, 32, 32]``."""

    def __init__(self, dim: int = 128) -> None:
        super().__init__()
        self.dim = dim
        self.fc = nn.Linear(LATENT, 4 * 4 * dim)
        self.blocks = nn.Sequential(_UpBlock(dim), _UpBlock(dim), _UpBlock(dim))
        self.out = nn.Sequential(nn.BatchNorm2d(dim), nn.ReLU(), nn.Conv2d(dim, 3, 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.blocks(self.fc(z).reshape(-1, self.dim, 4, 4)))


class ResNetCritic(nn.Module):
    """Optimized first block (down), ResBlock down, 2 ResBlocks, ReLU, global mean, linear: ``-> [N]``."""

    def __init__(self, dim: int = 128) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            _DownBlock(dim, down=True, first=True, cin=3),
            _DownBlock(dim, down=True),
            _DownBlock(dim, down=False),
            _DownBlock(dim, down=False),
        )
        self.fc = nn.Linear(dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(F.relu(self.blocks(x)).mean((2, 3))).squeeze(-1)
