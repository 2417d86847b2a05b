"""The penalty's score-map conventions through the update step: the config key, and bf16/fp16 score maps."""

from __future__ import annotations

from typing import Any, cast

import pytest
import torch
from torch import nn

from wgangp.config import TrainConfig
from wgangp.penalty import gradient_penalty
from wgangp.step.amp import mixed_precision_penalty
from wgangp.step.spec import StepSpec
from wgangp.step.update import penalty_and_norms


class PatchCritic(nn.Module):
    """A PatchGAN-style critic: ``[N, 1, 8, 8] -> [N, 1, 3, 3]`` scores."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, 2), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 1, 8, 8, generator=g), torch.randn(6, 1, 8, 8, generator=g)


@pytest.mark.parametrize("score_map", ["sum", "per-location"])
def test_bf16_score_map_penalty_matches_fp32(score_map: str) -> None:
    torch.manual_seed(0)
    critic = PatchCritic()
    real, fake = _batch()
    exact, exact_norms = gradient_penalty(
        critic, real, fake, generator=torch.Generator().manual_seed(1), score_map=score_map, return_norms=True
    )
    low, low_norms = mixed_precision_penalty(
        critic, real, fake, precision="bf16", generator=torch.Generator().manual_seed(1), score_map=score_map
    )
    assert low_norms.shape == exact_norms.shape == ((6,) if score_map == "sum" else (6, 1, 3, 3))
    # bf16's 8-bit mantissa: a few percent, two-sided; the conventions differ by far more (below).
    assert low.item() == pytest.approx(exact.item(), rel=0.05)
    torch.testing.assert_close(low_norms, exact_norms, rtol=0.05, atol=1e-3)


def test_the_two_conventions_differ_so_the_bf16_check_can_fail() -> None:
    torch.manual_seed(0)
    critic = PatchCritic()
    real, fake = _batch()
    summed = mixed_precision_penalty(
        critic, real, fake, precision="bf16", generator=torch.Generator().manual_seed(1)
    )[0]
    per_location = mixed_precision_penalty(
        critic,
        real,
        fake,
        precision="bf16",
        generator=torch.Generator().manual_seed(1),
        score_map="per-location",
    )[0]
    assert abs(summed.item() - per_location.item()) > 0.2 * abs(per_location.item())


def test_loss_scaled_per_location_penalty_matches_unscaled() -> None:
    """The GradScaler's scale multiplies the batched gradients and is divided out again."""
    torch.manual_seed(0)
    critic = PatchCritic().double()
    real, fake = (x.double() for x in _batch())
    exact = gradient_penalty(
        critic, real, fake, generator=torch.Generator().manual_seed(1), score_map="per-location"
    )

    class Scaler:  # the part of GradScaler the recipe uses, at scale 2^10 (CPU autocast has no fp16 scaler)
        def scale(self, t: torch.Tensor) -> torch.Tensor:
            return t * 1024.0

        def _get_scale_async(self) -> torch.Tensor:
            return torch.tensor(1024.0, dtype=torch.float64)

    scaled, _ = mixed_precision_penalty(
        critic,
        real,
        fake,
        precision="bf16",
        scaler=cast(Any, Scaler()),
        generator=torch.Generator().manual_seed(1),
        score_map="per-location",
    )
    assert scaled.item() == pytest.approx(exact.item(), rel=0.05)


class _State:
    def __init__(self, critic: nn.Module) -> None:
        self.critic = critic
        self.noise = torch.Generator().manual_seed(1)
        self.critic_scaler = None


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("score_map", ["sum", "per-location"])
def test_config_key_reaches_the_step(precision: str, score_map: str) -> None:
    """``penalty_score_map`` in the config is the convention ``penalty_and_norms`` applies."""
    torch.manual_seed(0)
    critic = PatchCritic()
    real, fake = _batch()
    config = TrainConfig(penalty_score_map=score_map, precision=precision, batch_size=6)
    spec = StepSpec.from_config(config)
    assert spec.penalty_score_map == score_map
    penalty, norms = penalty_and_norms(cast(Any, _State(critic)), spec, real, fake, 6)
    expected = gradient_penalty(
        critic, real, fake, generator=torch.Generator().manual_seed(1), score_map=score_map
    )
    tolerance = 1e-6 if precision == "fp32" else 0.05
    assert penalty.item() == pytest.approx(expected.item(), rel=tolerance)
    assert norms.shape == ((6,) if score_map == "sum" else (6, 1, 3, 3))


def test_config_refuses_an_unknown_convention() -> None:
    from wgangp.config import config_from_dict
    from wgangp.errors import UserError

    with pytest.raises(UserError, match="penalty_score_map must be one of sum, per-location"):
        config_from_dict({"penalty_score_map": "mean"})
