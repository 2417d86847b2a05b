"""The seed's code as a reference: its ``gradient_penalty`` and a plain loop of Algorithm 1 around it.

This is what a user would write from the seed article. It is the oracle of the trainer's tests (same math
to float rounding, given the same random streams) and the baseline every benchmark reports ratios against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from wgangp.config import TrainConfig

__all__ = ["PlainLoop", "seed_gradient_penalty"]


def seed_gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real_data: Tensor,
    fake_data: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The seed's function, with ε shaped for any rank (the seed's ``rand(N, 1, 1, 1)`` fits images only)."""
    shape = (real_data.size(0),) + (1,) * (real_data.ndim - 1)
    epsilon = torch.rand(shape, generator=generator, device=real_data.device, dtype=real_data.dtype)
    interpolates = epsilon * real_data + (1 - epsilon) * fake_data
    interpolates.requires_grad_(True)
    d_interpolates = discriminator(interpolates)
    gradients = torch.autograd.grad(
        outputs=d_interpolates,
        inputs=interpolates,
        grad_outputs=torch.ones_like(d_interpolates),
        create_graph=True,
        retain_graph=True,
    )[0]
    gradient_norm = gradients.reshape(gradients.size(0), -1).norm(2, dim=1)
    return ((gradient_norm - 1) ** 2).mean()


class PlainLoop:
    """Algorithm 1 written plainly, as from the seed: separate real/fake forwards, Adam, no tricks.

    Draws z then ε from ``noise`` and real batches from ``data``, in the same order as ``wgangp.Trainer``.
    """

    def __init__(
        self,
        generator: nn.Module,
        critic: nn.Module,
        data: Callable[[], Tensor],
        *,
        latent_dim: int,
        batch_size: int,
        penalty_weight: float,
        n_critic: int = 5,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.5, 0.9),
        noise: torch.Generator | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        self.generator, self.critic, self.data = generator, critic, data
        self.latent_dim, self.batch_size = latent_dim, batch_size
        self.penalty_weight, self.n_critic = penalty_weight, n_critic
        self.noise = noise
        make = optimizer or (lambda params: torch.optim.Adam(params, lr=lr, betas=betas))
        self.optimizer_g = make(generator.parameters())
        self.optimizer_d = make(critic.parameters())

    @classmethod
    def from_config(
        cls,
        config: TrainConfig,
        generator: nn.Module,
        critic: nn.Module,
        data: Callable[[], Tensor],
        *,
        noise: torch.Generator | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> PlainLoop:
        """The plain loop with ``config``'s batch, λ, n_critic and Adam settings (the critic's lr for both)."""
        return cls(
            generator,
            critic,
            data,
            latent_dim=config.latent_dim,
            batch_size=config.batch_size,
            penalty_weight=config.penalty_weight,
            n_critic=config.n_critic,
            lr=config.lr_critic,
            betas=(config.beta1, config.beta2),
            noise=noise,
            optimizer=optimizer,
        )

    def _z(self, device: torch.device) -> Tensor:
        return torch.randn(self.batch_size, self.latent_dim, generator=self.noise, device=device)

    def iteration(self) -> tuple[float, float]:
        """n_critic critic steps then one generator step; returns the last (critic loss, generator loss)."""
        for _ in range(self.n_critic):
            real = self.data()
            fake = self.generator(self._z(real.device)).detach()
            d_real = self.critic(real).mean()
            d_fake = self.critic(fake).mean()
            gp = seed_gradient_penalty(self.critic, real, fake, self.noise)
            d_loss = d_fake - d_real + self.penalty_weight * gp
            self.optimizer_d.zero_grad()
            d_loss.backward()
            self.optimizer_d.step()
        for p in self.critic.parameters():
            p.requires_grad = False
        fake = self.generator(self._z(real.device))
        g_loss = -self.critic(fake).mean()
        self.optimizer_g.zero_grad()
        g_loss.backward()
        self.optimizer_g.step()
        for p in self.critic.parameters():
            p.requires_grad = True
        return float(d_loss.detach()), float(g_loss.detach())
