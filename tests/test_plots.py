"""wgangp.pictures.plots: the critic surface is exact and side-effect free; plots are real PNG files; no figure leaks."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: the tests only read pyplot's figure registry

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from wgangp.data.toy import ToySampler
from wgangp.models.mlp import MLPCritic
from wgangp.pictures.plots import critic_surface, plot_curves, plot_toy

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_bytes: int = 5_000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.reshape(-1, pixels.shape[2]).std(axis=0).max() > 0  # not a blank image


# --- critic_surface ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("extent", "resolution"), [(3.0, 128), (1.5, 7), (2.0, 2)])
def test_surface_equals_direct_evaluation(extent: float, resolution: int) -> None:
    torch.manual_seed(0)
    critic = MLPCritic(width=32, depth=2)
    xs, ys, values = critic_surface(critic, extent=extent, resolution=resolution)
    axis = np.linspace(-extent, extent, resolution)
    np.testing.assert_allclose(xs, axis, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ys, axis, rtol=0, atol=1e-6)
    assert values.shape == (resolution, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)  # grid_x[i, j] = xs[j], grid_y[i, j] = ys[i]
    points = torch.from_numpy(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1))
    with torch.no_grad():
        direct = critic(points).reshape(resolution, resolution).numpy()
    np.testing.assert_allclose(values, direct, rtol=1e-5, atol=1e-6)


def test_surface_orientation_with_a_linear_critic() -> None:
    # D(x, y) = 2x − 3y + 0.5, so values[i, j] = 2·xs[j] − 3·ys[i] + 0.5 (rows follow y).
    critic = nn.Linear(2, 1)  # returns [N, 1], which is accepted
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[2.0, -3.0]]))
        critic.bias.fill_(0.5)
    xs, ys, values = critic_surface(critic, extent=1.0, resolution=5)
    expected = 2 * xs[None, :] - 3 * ys[:, None] + 0.5
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("start_training", [True, False])
def test_surface_restores_train_eval_modes(start_training: bool) -> None:
    critic = nn.Sequential(nn.Linear(2, 16), nn.Dropout(0.5), nn.ReLU(), nn.Linear(16, 1))
    critic.train(start_training)
    critic[1].train(not start_training)  # mixed modes must come back exactly as they were
    before = [m.training for m in critic.modules()]
    _, _, first = critic_surface(critic, resolution=9)
    assert [m.training for m in critic.modules()] == before
    _, _, second = critic_surface(critic, resolution=9)
    np.testing.assert_array_equal(first, second)  # evaluated in eval mode: dropout off
    critic.eval()
    _, _, reference = critic_surface(critic, resolution=9)
    np.testing.assert_array_equal(first, reference)


def test_surface_builds_no_graph() -> None:
    critic = MLPCritic(width=8, depth=1)
    _, _, values = critic_surface(critic, resolution=4)
    assert isinstance(values, np.ndarray) and values.dtype == np.float32
    assert all(p.grad is None for p in critic.parameters())


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"extent": 0.0}, "extent"), ({"resolution": 1}, "resolution")]
)
def test_surface_argument_errors(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        critic_surface(MLPCritic(width=4, depth=1), **kwargs)  # type: ignore[arg-type]


def test_surface_rejects_a_critic_with_the_wrong_output() -> None:
    with pytest.raises(ValueError, match="one value per point"):
        critic_surface(nn.Linear(2, 3), resolution=4)


# --- plot_toy / plot_curves --------------------------------------------------------------------------


@pytest.mark.parametrize("with_critic", [True, False])
def test_plot_toy_writes_a_png(tmp_path: Path, with_critic: bool) -> None:
    real = ToySampler("8gaussians", 256, seed=0)()
    fake = real + torch.randn(256, 2, generator=torch.Generator().manual_seed(1))  # Fig. 1a's generator
    critic = MLPCritic(width=16, depth=2) if with_critic else None
    path = tmp_path / "nested" / "dir" / "toy.png"
    figures_before = plt.get_fignums()
    plot_toy(path, real, fake.numpy(), critic, title="8 gaussians", resolution=32)
    assert plt.get_fignums() == figures_before
    assert_png(path)


def test_plot_toy_without_real_points(tmp_path: Path) -> None:
    fake = ToySampler("swissroll", 300, seed=0)()
    path = tmp_path / "fake_only.png"
    plot_toy(path, None, fake, MLPCritic(width=8, depth=1), resolution=16)
    assert_png(path)


def test_plot_toy_rejects_non_2d_points(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        plot_toy(tmp_path / "x.png", torch.zeros(4, 3), torch.zeros(4, 2))


def test_plot_curves_writes_a_png(tmp_path: Path) -> None:
    rows: list[dict[str, float]] = [
        {"step": float(i), "critic_loss": -1.0 / (i + 1), "w1": 2.0 * 0.9**i} for i in range(50)
    ]
    rows += [{"step": 50.0, "w1": 0.01}, {"no_step": 1.0}]
    path = tmp_path / "curves" / "curves.png"
    figures_before = plt.get_fignums()
    plot_curves(path, rows, keys=["critic_loss", "w1", "never_logged"])
    assert plt.get_fignums() == figures_before
    assert_png(path)


def test_plot_curves_with_nothing_to_draw_still_writes(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    plot_curves(path, [], keys=["w1"])
    assert_png(path, min_bytes=1_000)
