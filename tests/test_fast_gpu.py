"""The whole-iteration CUDA graph computes the same training as eager (GPU only; run by gpu_check.sh)."""

from __future__ import annotations

import pytest
import torch

from wgangp.config import resolve_config
from wgangp.step.graph import GraphedIteration
from wgangp.step.lazy import penalty_schedule
from wgangp.step.optim import build_optimizer
from wgangp.step.spec import StepSpec
from wgangp.step.state import TrainState
from wgangp.step.update import iteration
from wgangp.trainer import Trainer, build_models

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.usefixtures("no_tf32"),
]


def _config(**overrides):
    values = {"width": 128, "depth": 3, "batch_size": 256, "penalty_weight": 10.0} | overrides
    return resolve_config("toy", overrides=values)


def _networks(config, optimizer="adam"):
    """Networks on the GPU with the graph path's optimizers (capturable Adam, tensor lr) or plain SGD."""
    device = torch.device("cuda")
    generator, critic = (m.to(device) for m in build_models(config))
    if optimizer == "sgd":
        opts = [torch.optim.SGD(m.parameters(), lr=1e-2) for m in (generator, critic)]
    else:
        opts = [
            build_optimizer(config, m.parameters(), lr, graph=True, device=device, regularised=reg)
            for m, lr, reg in ((generator, config.lr_generator, False), (critic, config.lr_critic, True))
        ]
    noise = torch.Generator(device=device).manual_seed(config.seed + 1)
    return TrainState(generator, critic, opts[0], opts[1], noise)


def _reals(config, iterations):
    g = torch.Generator().manual_seed(7)
    return torch.randn(iterations, config.n_critic, config.batch_size, 2, generator=g).cuda()


def _relative(a, b):
    return max(
        float((x - y).detach().norm() / y.detach().norm().clamp_min(1e-12)) for x, y in zip(a, b, strict=True)
    )


def _run(config, optimizer, reals, *, graph, warmup=1):
    nets = _networks(config, optimizer)
    spec = StepSpec.from_config(config, autocast_cache=False)
    graphed = GraphedIteration(nets, spec, warmup=warmup) if graph else None
    stats = []
    for it in range(reals.shape[0]):
        schedule = penalty_schedule(it * config.n_critic, config.n_critic, config.penalty_every)
        out = graphed(reals[it], schedule) if graphed else iteration(nets, spec, reals[it], schedule)
        stats.append({k: float(v) for k, v in out.items()})
    return nets, stats


def test_first_replay_gradients_match_eager():
    # Iteration 0 is the eager warm-up, iteration 1 the first replay: its gradients must be eager's.
    config = _config()
    reals = _reals(config, 2)
    eager, _ = _run(config, "sgd", reals, graph=False)
    graphed, _ = _run(config, "sgd", reals, graph=True)
    for part in ("critic", "generator"):
        a = [p.grad for p in getattr(graphed, part).parameters()]
        b = [p.grad for p in getattr(eager, part).parameters()]
        assert _relative(a, b) < 1e-5, part


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_graph_trajectory_matches_eager(optimizer):
    # Same optimizer settings on both sides (capturable Adam, tensor lr); fp32 without TF32.
    config = _config()
    reals = _reals(config, 12)
    eager, eager_stats = _run(config, optimizer, reals, graph=False)
    graphed, graph_stats = _run(config, optimizer, reals, graph=True)
    bound = 1e-5 if optimizer == "sgd" else 1e-4
    assert _relative(graphed.critic.parameters(), eager.critic.parameters()) < bound
    assert _relative(graphed.generator.parameters(), eager.generator.parameters()) < bound
    assert graph_stats[-1]["generator_loss"] == pytest.approx(eager_stats[-1]["generator_loss"], rel=1e-3)


def test_lazy_bf16_graph_matches_lazy_bf16_eager():
    config = _config(precision="bf16", penalty_every=4)
    reals = _reals(config, 10)
    eager, _ = _run(config, "sgd", reals, graph=False)
    graphed, _ = _run(config, "sgd", reals, graph=True)
    # Same bf16 kernels in the same order: rounding differs only where cuBLAS picks other algorithms.
    assert _relative(graphed.critic.parameters(), eager.critic.parameters()) < 1e-3


def test_recapture_on_a_new_batch_shape():
    config = _config()
    nets = _networks(config)
    graphed = GraphedIteration(nets, StepSpec.from_config(config, autocast_cache=False), warmup=1)
    schedule = (True,) * config.n_critic
    for batch in (256, 256, 128, 128):
        stats = graphed(torch.randn(config.n_critic, batch, 2, device="cuda"), schedule)
        assert all(torch.isfinite(v) for v in stats.values())
    assert len(graphed._graphs) == 2


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_trainer_takes_the_graph_on_cuda_and_trains(precision):
    trainer = Trainer(_config(precision=precision, steps=20), device=torch.device("cuda"))
    assert trainer.step_path == "graph"
    for _ in range(6):
        stats = trainer.train_iteration()
    assert all(torch.isfinite(v) for v in stats.values())
    # The lr schedule reaches a graph through the tensor lr.
    lr = trainer.critic_opt.param_groups[0]["lr"]
    assert isinstance(lr, torch.Tensor) and lr.is_cuda


def test_trainer_fp16_on_cuda_runs_eager_with_the_scaler():
    trainer = Trainer(_config(precision="fp16"), device=torch.device("cuda"))
    assert trainer.step_path == "fast-eager"
    for _ in range(3):
        stats = trainer.train_iteration()
    assert torch.isfinite(stats["generator_loss"])


def test_digits_dcgan_graph_trains_like_eager_on_cuda():
    # The image pipeline on the graph path: a DCGAN on digits, host batches copied into the static buffer.
    config = resolve_config("digits", overrides={"steps": 10, "conv_width": 16, "penalty_weight": 10.0})
    losses = {}
    for mode in ("eager", "graph"):
        trainer = Trainer(config.replace(step_mode=mode), device=torch.device("cuda"))
        assert trainer.step_path == mode
        losses[mode] = [float(trainer.train_iteration()["generator_loss"]) for _ in range(4)]
        assert trainer.generator(trainer.latents(8)).shape == (8, 1, 8, 8)
    # Same data, noise and math; the capturable fused Adam rounds differently from the eager one, and Adam
    # turns rounding into steps of up to lr: the losses agree loosely (a wrong batch or step would not).
    assert losses["graph"] == pytest.approx(losses["eager"], rel=0.25, abs=0.02)


@pytest.mark.parametrize("dataset", ["text", "sequences"])
def test_sequence_models_graph_and_bf16_train_like_eager_on_cuda(dataset, tmp_path):
    # Sequences on the graph path (and bf16 graph): one-hot text [N, V, T] or signals [N, C, T].
    import numpy as np

    overrides = {"steps": 10, "width": 32, "depth": 2, "n_critic": 2, "seq_len": 16}
    if dataset == "sequences":
        x = np.sin(np.arange(32)[None] / 3 + np.random.default_rng(0).uniform(0, 6, (400, 1)))
        np.save(tmp_path / "s.npy", x.astype(np.float32))
        overrides["data_path"] = str(tmp_path / "s.npy")
    config = resolve_config(dataset, overrides=overrides)
    losses = {}
    for mode, precision in (("eager", "fp32"), ("graph", "fp32"), ("graph", "bf16")):
        trainer = Trainer(config.replace(step_mode=mode, precision=precision), device=torch.device("cuda"))
        assert trainer.step_path == mode
        losses[mode, precision] = [float(trainer.train_iteration()["generator_loss"]) for _ in range(4)]
    assert all(np.isfinite(v).all() for v in losses.values())
    # As for digits: the capturable fused Adam rounds differently, so the losses agree loosely.
    assert losses["graph", "fp32"] == pytest.approx(losses["eager", "fp32"], rel=0.25, abs=0.02)


# --- class-conditional runs: labels in a static buffer ------------------------------------------------


def _conditional_run(conditioning, reals, labels, *, graph):
    config = resolve_config("digits", overrides={"conv_width": 16, "conditioning": conditioning})
    device = torch.device("cuda")
    generator, critic = (m.to(device) for m in build_models(config, n_classes=10))
    opts = [torch.optim.SGD(m.parameters(), lr=1e-2) for m in (generator, critic)]
    nets = TrainState(generator, critic, opts[0], opts[1], torch.Generator(device=device).manual_seed(1))
    spec = StepSpec.from_config(config, autocast_cache=False, n_classes=10)
    graphed = GraphedIteration(nets, spec, warmup=1) if graph else None
    stats = []
    for it in range(reals.shape[0]):
        schedule = (True,) * config.n_critic
        if graphed:
            out = graphed(reals[it], schedule, labels[it])
        else:
            out = iteration(nets, spec, reals[it].cuda(), schedule, labels=labels[it].cuda())
        stats.append({k: float(v) for k, v in out.items()})
    return nets, stats, graphed


@pytest.mark.parametrize("conditioning", ["acgan", "projection"])
def test_conditional_graph_matches_eager(conditioning):
    # Host batches and labels copied into the static buffers before each replay: eager's training.
    g = torch.Generator().manual_seed(3)
    reals = torch.rand(6, 5, 64, 1, 8, 8, generator=g) * 2 - 1
    labels = torch.randint(10, (6, 5, 64), generator=g)
    eager, eager_stats, _ = _conditional_run(conditioning, reals, labels, graph=False)
    graphed, graph_stats, captured = _conditional_run(conditioning, reals, labels, graph=True)
    assert len(captured._graphs) == 1  # replayed, not eager throughout
    assert _relative(graphed.critic.parameters(), eager.critic.parameters()) < 1e-4
    assert _relative(graphed.generator.parameters(), eager.generator.parameters()) < 1e-4
    assert graph_stats[-1].keys() == eager_stats[-1].keys()
    if conditioning == "acgan":
        assert graph_stats[-1]["class_loss"] == pytest.approx(eager_stats[-1]["class_loss"], rel=1e-3)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_conditional_trainer_takes_the_graph_on_cuda(precision):
    config = resolve_config("digits-acgan", overrides={"conv_width": 16, "precision": precision, "steps": 20})
    trainer = Trainer(config, device=torch.device("cuda"))
    assert trainer.step_path == "graph" and trainer.n_classes == 10
    for _ in range(5):
        stats = trainer.train_iteration()
    assert all(torch.isfinite(v) for v in stats.values())
    assert 0.0 <= float(stats["class_accuracy_real"]) <= 1.0
    images = trainer.sample(20, seed=0, labels=torch.arange(10).repeat(2).cuda())
    assert images.shape == (20, 1, 8, 8) and images.is_cuda
