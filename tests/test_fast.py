"""The fast paths compute the same training as the fp32 eager trainer (wgangp.step)."""

from __future__ import annotations

import warnings

import pytest
import torch

from wgangp.config import resolve_config
from wgangp.distributed import Shard
from wgangp.errors import UserError
from wgangp.penalty import gradient_penalty
from wgangp.step.amp import mixed_precision_penalty
from wgangp.step.lazy import lazy_adam_hyperparameters, lazy_penalty_weight, penalty_schedule
from wgangp.step.paths import choose_step_path, graph_unsupported_reason
from wgangp.step.spec import StepSpec
from wgangp.step.state import TrainState
from wgangp.step.update import critic_update, iteration
from wgangp.trainer import Trainer, build_models

CPU = torch.device("cpu")


def _config(**overrides):
    values = {"width": 32, "depth": 2, "batch_size": 64, "steps": 10, "penalty_weight": 10.0} | overrides
    return resolve_config("toy", overrides=values)


def _sgd_networks(config, lr=1e-2, init_scale=1024.0):
    """Both networks from ``config.seed`` with SGD (differences propagate linearly, unlike Adam's)."""
    generator, critic = build_models(config)
    nets = TrainState(
        generator,
        critic,
        torch.optim.SGD(generator.parameters(), lr=lr),
        torch.optim.SGD(critic.parameters(), lr=lr),
        torch.Generator().manual_seed(config.seed + 1),
    )
    if config.precision == "fp16":
        # PyTorch's default 2^16 overflows fp16 in the penalty's double backward and skips the first
        # steps (as designed); a smaller start keeps every step, so trajectories can be compared.
        nets.critic_scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
        nets.generator_scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    return nets


def _relative(a, b):
    return max(
        float((x - y).detach().norm() / y.detach().norm().clamp_min(1e-12)) for x, y in zip(a, b, strict=True)
    )


# --- lazy regularisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n_critic", "every", "expected"),
    [
        (0, 5, 1, (True,) * 5),
        (0, 5, 4, (True, False, False, False, True)),
        (5, 5, 4, (False, False, False, True, False)),
        (10, 5, 4, (False, False, True, False, False)),
        (0, 3, 2, (True, False, True)),
    ],
)
def test_penalty_schedule(start, n_critic, every, expected):
    assert penalty_schedule(start, n_critic, every) == expected


def test_penalty_rate_is_exactly_one_in_k_over_a_period():
    taken = [s for it in range(4) for s in penalty_schedule(it * 5, 5, 4)]
    assert sum(taken) == 5  # 20 critic steps, every 4th


def test_lazy_weight_and_adam_rescale():
    assert lazy_penalty_weight(10.0, 1) == 10.0
    assert lazy_penalty_weight(10.0, 4) == 40.0
    lr, (b1, b2) = lazy_adam_hyperparameters(1e-4, (0.5, 0.9), 4)
    assert lr == pytest.approx(0.8e-4, rel=1e-12)
    assert (b1, b2) == pytest.approx((0.5**0.8, 0.9**0.8), rel=1e-12)
    with pytest.raises(ValueError, match="penalty_every"):
        penalty_schedule(0, 5, 0)


def test_lazy_rescale_applies_to_the_critic_only():
    trainer = Trainer(_config(penalty_every=4, lazy_adam_rescale=True), device=CPU)
    critic_group, generator_group = trainer.critic_opt.param_groups[0], trainer.generator_opt.param_groups[0]
    assert critic_group["lr"] == pytest.approx(0.8e-4)
    assert critic_group["betas"] == pytest.approx((0.5**0.8, 0.9**0.8))
    assert (generator_group["lr"], generator_group["betas"]) == (1e-4, (0.5, 0.9))
    plain = Trainer(_config(penalty_every=4), device=CPU)
    assert plain.critic_opt.param_groups[0]["lr"] == 1e-4


@pytest.mark.parametrize("generator_batch_multiple", [1, 2])
def test_iteration_equals_single_updates_exactly(generator_batch_multiple):
    # The one update step (penalty_every=1, fp32) is Algorithm 1's n_critic critic updates, one real batch
    # at a time, then a generator update, bit for bit (the generator step on B × generator_batch_multiple
    # samples, as the paper's ResNet recipe).
    config = _config(generator_batch_multiple=generator_batch_multiple)
    trainer, stepwise = Trainer(config, device=CPU), Trainer(config, device=CPU)
    for _ in range(3):
        expected = trainer.train_iteration()
        critic_stats = [stepwise.critic_step() for _ in range(config.n_critic)]
        totals = dict(critic_stats[0])
        for stats in critic_stats[1:]:
            totals = {key: totals[key] + stats[key] for key in totals}
        got = {key: value / config.n_critic for key, value in totals.items()} | stepwise.generator_step()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    for a, b in zip(trainer.critic.parameters(), stepwise.critic.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(trainer.generator.parameters(), stepwise.generator.parameters(), strict=True):
        assert torch.equal(a, b)


def test_lazy_penalty_matches_a_hand_written_loop():
    # k = 2, n_critic = 3: penalty with weight 2λ on global critic steps 0, 2, 4, ...; ε drawn only then.
    config = _config(penalty_every=2, n_critic=3)
    nets = _sgd_networks(config)
    ref = _sgd_networks(config)
    spec = StepSpec.from_config(config)
    reals = torch.randn(2, 3, 64, 2, generator=torch.Generator().manual_seed(9))
    for it in range(2):
        iteration(nets, spec, reals[it], penalty_schedule(it * 3, 3, 2))
        for i in range(3):
            real = reals[it, i]
            with torch.no_grad():
                fake = ref.generator(torch.randn(64, 2, generator=ref.noise))
            loss = ref.critic(fake).mean() - ref.critic(real).mean()
            if (it * 3 + i) % 2 == 0:
                loss = loss + 20.0 * gradient_penalty(ref.critic, real, fake, generator=ref.noise)
            ref.critic_opt.zero_grad()
            loss.backward()
            ref.critic_opt.step()
        ref.critic.requires_grad_(False)
        g_loss = -ref.critic(ref.generator(torch.randn(64, 2, generator=ref.noise))).mean()
        ref.generator_opt.zero_grad()
        g_loss.backward()
        ref.generator_opt.step()
        ref.critic.requires_grad_(True)
    assert _relative(nets.critic.parameters(), ref.critic.parameters()) < 1e-5
    assert _relative(nets.generator.parameters(), ref.generator.parameters()) < 1e-5


def test_lazy_iteration_reports_penalty_only_from_penalised_steps():
    trainer = Trainer(_config(penalty_every=4), device=CPU)
    stats = trainer.train_iteration()  # critic steps 0..4: penalty at 0 and 4
    assert {"penalty", "grad_norm"} <= stats.keys()
    trainer.train_iteration()  # steps 5..9: penalty at 8
    assert trainer.step_path == "fast-eager"


# --- mixed precision -------------------------------------------------------------------------------

# Tolerances. bf16 keeps 8 significant bits (unit roundoff 2^-9 ≈ 2e-3), fp16 11 bits (2^-12 ≈ 2.4e-4).
# A critic gradient with the penalty passes through ~3 matmuls forward and ~6 in the double backward, each
# rounding its inputs and output, so errors of ~10 roundoffs are expected: measured 1.7e-2 to 3.4e-2 (bf16)
# and 6e-3 (fp16) for width 32 to 512. The upper bounds leave 3x margin; the lower bounds prove the
# low-precision arithmetic actually ran.
ONE_STEP = {"bf16": (1e-3, 0.1), "fp16": (1e-4, 2e-2)}
THREE_ITERATIONS = {"bf16": (1e-4, 2e-2), "fp16": (1e-5, 1e-2)}


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_critic_gradient_matches_fp32(precision):
    base = _config()
    real = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    grads = {}
    for config in (base, base.replace(precision=precision)):
        nets = _sgd_networks(config, lr=0.0)  # lr 0: the step leaves p.grad (unscaled by scaler.step)
        critic_update(nets, StepSpec.from_config(config), real, penalise=True)
        grads[config.precision] = [p.grad.clone() for p in nets.critic.parameters()]
    low, high = ONE_STEP[precision]
    assert low < _relative(grads[precision], grads["fp32"]) < high


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trajectory_matches_fp32(precision):
    base = _config()
    reals = torch.randn(3, 5, 64, 2, generator=torch.Generator().manual_seed(4))
    runs = {}
    for config in (base, base.replace(precision=precision)):
        nets, spec = _sgd_networks(config), StepSpec.from_config(config)
        for it in range(3):
            iteration(nets, spec, reals[it], (True,) * 5)
        if nets.critic_scaler is not None:
            assert nets.critic_scaler.get_scale() == 1024.0  # no step was skipped
        runs[config.precision] = nets
    low, high = THREE_ITERATIONS[precision]
    for part in ("critic", "generator"):
        got = getattr(runs[precision], part).parameters()
        assert low < _relative(got, getattr(runs["fp32"], part).parameters()) < high


@pytest.mark.parametrize("at", ["interpolates", "real", "fake", "dragan"])
@pytest.mark.parametrize("kind", ["two-sided", "one-sided", "zero-centered"])
def test_mixed_precision_penalty_draws_the_same_points(kind, at):
    # A linear critic's input gradient is w in any precision, and w is exact in bf16: with the same
    # generator state the points, the gradients and so the penalties must agree to fp32 rounding.
    critic = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.75, -0.5]]))  # exact in bf16
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    options = {"kind": kind, "at": at, "fraction": 0.5}
    expected = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(1), **options)
    got, norms = mixed_precision_penalty(
        critic, real, fake, precision="bf16", generator=torch.Generator().manual_seed(1), **options
    )
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    assert norms.shape == (8,)


def test_fp16_overflow_skips_the_step_and_lowers_the_scale():
    config = _config(precision="fp16")
    nets = _sgd_networks(config, init_scale=2.0**40)  # the penalty's double backward overflows fp16
    before = [p.clone() for p in nets.critic.parameters()]
    critic_update(nets, StepSpec.from_config(config), torch.randn(64, 2), penalise=True)
    assert all(torch.equal(a, b) for a, b in zip(before, nets.critic.parameters(), strict=True))
    assert nets.critic_scaler.get_scale() == 2.0**39


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_trainer_runs_mixed_precision_with_finite_stats(precision):
    trainer = Trainer(_config(precision=precision), device=CPU)
    assert trainer.step_path == "fast-eager"
    if precision == "fp16":
        assert trainer.critic_opt.defaults["fused"]  # scaler.step without a host sync
    for _ in range(3):
        stats = trainer.train_iteration()
    assert all(torch.isfinite(v) for v in stats.values())


# --- path selection and config ---------------------------------------------------------------------


def test_graph_falls_back_to_eager_with_a_message_on_cpu():
    with pytest.warns(UserWarning, match="falling back to eager.*CUDA"):
        path, message = choose_step_path(_config(step_mode="graph"), CPU)
    assert path == "eager" and "cpu" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose_step_path(_config(), CPU) == ("eager", None)
        assert choose_step_path(_config(precision="bf16"), CPU) == ("fast-eager", None)


def test_fp16_is_not_graphed():
    cuda = torch.device("cuda")  # the reason is decided from the device type alone
    assert "GradScaler" in graph_unsupported_reason(_config(precision="fp16"), cuda)
    assert graph_unsupported_reason(_config(precision="bf16"), cuda) is None


@pytest.mark.parametrize(("backend", "graphed"), [("nccl", True), ("gloo", False)])
def test_several_processes_take_the_graph_on_nccl_only(monkeypatch, backend, graphed):
    monkeypatch.setattr("wgangp.step.paths.collective_backend", lambda: backend)
    reason = graph_unsupported_reason(_config(), torch.device("cuda"), Shard(0, 2))
    assert (reason is None) == graphed
    if not graphed:
        assert "gloo backend" in reason


def test_speed_config_fields_parse_and_check():
    config = resolve_config(
        "toy", sets=["precision=bf16", "penalty_every=4", "lazy_adam_rescale=true", "step_mode=eager"]
    )
    assert (config.precision, config.penalty_every, config.lazy_adam_rescale) == ("bf16", 4, True)
    for bad in ("precision=fp8", "penalty_every=0", "lazy_adam_rescale=maybe", "step_mode=jit"):
        with pytest.raises(UserError):
            resolve_config("toy", sets=[bad])
    with pytest.raises(UserError, match="compile must be true or false"):
        resolve_config("toy", overrides={"compile": 1})


@pytest.mark.slow  # compiling takes ~45 s on 2 busy cores
def test_compiled_objective_matches_eager():
    # torch.compile of the penalised critic loss (trace_autograd_ops, fullgraph, x̂ made outside): the same
    # update as eager up to fp32 reassociation in the fused kernels (measured ~1e-7 relative).
    base = _config(width=16, n_critic=2)
    reals = torch.randn(2, 2, 64, 2, generator=torch.Generator().manual_seed(5))
    runs = []
    for config in (base, base.replace(compile=True)):
        nets, spec = _sgd_networks(config), StepSpec.from_config(config)
        assert spec.compile == config.compile
        stats = [iteration(nets, spec, reals[it], (True, False)) for it in range(2)]
        runs.append((nets, stats))
    (eager, eager_stats), (compiled, compiled_stats) = runs
    assert _relative(compiled.critic.parameters(), eager.critic.parameters()) < 1e-5
    assert _relative(compiled.generator.parameters(), eager.generator.parameters()) < 1e-5
    torch.testing.assert_close(
        compiled_stats[-1]["penalty"], eager_stats[-1]["penalty"], rtol=1e-5, atol=1e-7
    )


# --- command line ----------------------------------------------------------------------------------


def test_cli_precision_flag_reaches_the_config(monkeypatch, tmp_path):
    from wgangp import cli

    seen = {}

    def fake_train(config, run_dir, **_):
        seen["config"] = config
        raise UserError("stop here")

    monkeypatch.setattr("wgangp.run.loop.train", fake_train)
    assert cli.main(["train", "--precision", "bf16", "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert seen["config"].precision == "bf16"


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--paths", "nope"], "unknown path"), (["--device", "cpu", "--paths", "graph"], "need CUDA")],
)
def test_cli_bench_rejects_bad_paths_in_one_line(argv, message, capsys):
    from wgangp import cli

    assert cli.main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
