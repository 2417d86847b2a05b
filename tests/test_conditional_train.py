"""Class-conditional training end to end: labels through the one update step, the trainer, resume,
torchrun, evaluation and ``wgangp sample --class`` (README "Conditional").

The small cases train an MLP on labelled 2-d vectors (a ``.npz`` with ``x`` and ``y``) and a tiny DCGAN on
digits; the step is checked against a hand-written AC-GAN / projection update with the same random draws.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from step_util import sgd_state
from torchrun_util import QUIET, assert_same_training, checkpoint_state, torchrun
from wgangp.cli import main
from wgangp.config import resolve_config
from wgangp.data.sampler import ArraySampler
from wgangp.errors import UserError
from wgangp.evaluation.images import class_rows
from wgangp.losses import acgan_critic_loss, acgan_generator_loss, wasserstein_critic_loss
from wgangp.penalty import gradient_penalty
from wgangp.run.checkpoint import load_checkpoint
from wgangp.run.rundir import load_run
from wgangp.step.lazy import penalty_schedule
from wgangp.step.spec import StepSpec
from wgangp.step.update import critic_update, generator_update, iteration
from wgangp.trainer import Trainer

K = 10  # classes of the labelled vectors
CONDITIONINGS = ["acgan", "projection"]
VECTOR_RUN = {
    "width": 16,
    "depth": 2,
    "batch_size": 32,
    "eval_samples": 64,
    "log_every": 1,
    "eval_every": 10**6,
    "plot_every": 10**6,
    "checkpoint_every": 2,
    "keep_checkpoints": 10,
    "lr_decay": "none",  # the CLI's default preset decays over `steps`, which a resume with --steps changes
}


@pytest.fixture(autouse=True)
def _one_process_here(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> Path:
    """640 labelled 2-d points: class k around (cos, sin) of angle 2πk/K."""
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(K), 64)
    angle = 2 * np.pi * y / K
    x = np.stack([np.cos(angle), np.sin(angle)], 1) + 0.05 * rng.normal(size=(y.size, 2))
    path = tmp_path_factory.mktemp("vectors") / "labelled.npz"
    np.savez(path, x=x.astype(np.float32), y=y)
    return path


def _config(vectors: Path, conditioning: str = "acgan", **overrides):
    values = {
        "dataset": "vectors",
        "data_path": str(vectors),
        "conditioning": conditioning,
        "device": "cpu",
        "penalty_weight": 10.0,
        **VECTOR_RUN,
    }
    return resolve_config("toy", overrides=values | overrides)


def _sgd_state(config, n_classes=K, lr=1e-2):
    return sgd_state(config, n_classes=n_classes, lr=lr)


def _batch(config, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(config.batch_size, 2, generator=g), torch.randint(K, (config.batch_size,), generator=g)


def _assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)


# --- the update step against a hand-written one -----------------------------------------------------


@pytest.mark.parametrize("penalty_every", [1, 2])
@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_critic_update_is_the_hand_written_conditional_update(vectors, conditioning, penalty_every):
    config = _config(vectors, conditioning, penalty_every=penalty_every, acgan_scale=0.7)
    state = _sgd_state(config)
    by_hand = copy.deepcopy(state)
    real, labels = _batch(config)
    spec = StepSpec.from_config(config, n_classes=K)
    stats = critic_update(state, spec, real, penalise=True, labels=labels)

    # The fakes are made for the real batch's labels; z, then ε, from the noise stream.
    g, d, noise = by_hand.generator, by_hand.critic, by_hand.noise
    with torch.no_grad():
        fake = g(torch.randn(config.batch_size, config.latent_dim, generator=noise), labels)
    if conditioning == "acgan":
        scores, logits = d.score_and_logits(torch.cat([real, fake]))
        loss = acgan_critic_loss(scores[:32], scores[32:], logits[:32], labels, scale=0.7)
    else:
        scores = d(torch.cat([real, fake]), torch.cat([labels, labels]))
        loss = wasserstein_critic_loss(scores[:32], scores[32:])
    penalty = gradient_penalty(d, real, fake, generator=noise, critic_inputs=(labels,))
    by_hand.critic_opt.zero_grad()
    (loss + 10.0 * penalty_every * penalty).backward()
    by_hand.critic_opt.step()

    _assert_same(state.critic.parameters(), by_hand.critic.parameters())
    torch.testing.assert_close(stats["critic_loss"], loss.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(stats["penalty"], penalty.detach(), rtol=1e-6, atol=1e-7)
    assert torch.equal(state.noise.get_state(), noise.get_state())  # the same draws, no more
    class_keys = {"class_loss", "class_accuracy_real", "class_accuracy_fake"}
    assert class_keys <= set(stats) if conditioning == "acgan" else not class_keys & set(stats)
    if conditioning == "acgan":
        accuracy = (logits[:32].argmax(1) == labels).float().mean()
        assert float(stats["class_accuracy_real"]) == pytest.approx(float(accuracy), abs=1e-7)


@pytest.mark.parametrize("multiple", [1, 2])
@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_generator_update_draws_uniform_labels_after_z(vectors, conditioning, multiple):
    config = _config(vectors, conditioning, generator_batch_multiple=multiple, acgan_scale_g=0.3)
    state = _sgd_state(config)
    by_hand = copy.deepcopy(state)
    n = config.batch_size * multiple
    stats = generator_update(state, StepSpec.from_config(config, n_classes=K), n, torch.device("cpu"))

    g, d, noise = by_hand.generator, by_hand.critic, by_hand.noise
    z = torch.randn(n, config.latent_dim, generator=noise)
    labels = torch.randint(K, (n,), generator=noise)
    fake = g(z, labels)
    if conditioning == "acgan":
        scores, logits = d.score_and_logits(fake)
        loss = acgan_generator_loss(scores, logits, labels, scale=0.3)
    else:
        loss = -d(fake, labels).mean()
    by_hand.generator_opt.zero_grad()
    loss.backward()
    by_hand.generator_opt.step()
    _assert_same(state.generator.parameters(), by_hand.generator.parameters())
    torch.testing.assert_close(stats["generator_loss"], loss.detach(), rtol=1e-6, atol=1e-7)
    assert ("generator_class_loss" in stats) == (conditioning == "acgan")
    assert all(p.grad is None for p in state.critic.parameters())  # the critic stayed frozen


def test_iteration_needs_labels_exactly_when_conditional(vectors):
    config = _config(vectors)
    state, spec = _sgd_state(config), StepSpec.from_config(config, n_classes=K)
    reals = torch.randn(config.n_critic, config.batch_size, 2)
    with pytest.raises(ValueError, match="labels must be given exactly when conditional"):
        iteration(state, spec, reals, (True,) * config.n_critic)
    plain = _config(vectors, "none")
    labels = torch.zeros(config.n_critic, config.batch_size, dtype=torch.int64)
    with pytest.raises(ValueError, match="labels must be given exactly when conditional"):
        iteration(_sgd_state(plain, 0), StepSpec.from_config(plain), reals, (True,) * 5, labels=labels)


@pytest.mark.parametrize("overrides", [{}, {"penalty_every": 3}, {"precision": "bf16"}])
def test_trainer_iteration_is_the_update_on_the_samplers_labelled_batches(vectors, overrides):
    # The trainer stacks n_critic (x, y) draws of its labelled sampler and runs update.iteration on them.
    config = _config(vectors, "projection", **overrides)
    trainer = Trainer(config)
    assert trainer.n_classes == K and trainer.data.labelled
    twin = copy.deepcopy(trainer.state)
    sampler = ArraySampler(
        trainer.data._load, config.batch_size, seed=config.seed + 2, images=False, labels=True
    )
    for step in range(2):
        draws = [sampler(with_labels=True) for _ in range(config.n_critic)]
        reals, labels = torch.stack([x for x, _ in draws]), torch.stack([y for _, y in draws])
        schedule = penalty_schedule(step * config.n_critic, config.n_critic, config.penalty_every)
        expected = iteration(twin, trainer.iteration.spec, reals, schedule, labels=labels)
        got = trainer.train_iteration()
        assert got.keys() == expected.keys()
        for key in got:
            torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)
    _assert_same(trainer.critic.parameters(), twin.critic.parameters())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_mixed_precision_conditional_step_follows_fp32(vectors, conditioning, precision):
    real, labels = _batch(_config(vectors))
    grads = {}
    for p in ("fp32", precision):
        config = _config(vectors, conditioning, precision=p, width=64)
        state = _sgd_state(config, lr=0.0)  # lr 0: p.grad stays as computed
        if p == "fp16":
            state.critic_scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        critic_update(state, StepSpec.from_config(config, n_classes=K), real, penalise=True, labels=labels)
        grads[p] = [q.grad.clone() for q in state.critic.parameters()]  # unscaled by scaler.step
    differences = [
        float((a - b).norm() / b.norm().clamp_min(1e-12))
        for a, b in zip(grads[precision], grads["fp32"], strict=True)
    ]
    # Low precision really ran (not 0) and stayed close (bf16 ~1e-2, fp16 ~1e-3 measured).
    assert 1e-6 < max(differences) < 0.1


@pytest.mark.slow  # compiling a double backward takes ~1 min on 2 busy cores
@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_compiled_conditional_objective_matches_eager(vectors, conditioning):
    real, labels = _batch(_config(vectors))
    states = []
    for compile_ in (False, True):
        config = _config(vectors, conditioning, compile=compile_)
        state = _sgd_state(config)
        stats = critic_update(
            state, StepSpec.from_config(config, n_classes=K), real, penalise=True, labels=labels
        )
        states.append((state, stats))
    (eager, eager_stats), (compiled, compiled_stats) = states
    assert compiled_stats.keys() == eager_stats.keys()
    for a, b in zip(compiled.critic.parameters(), eager.critic.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# --- the trainer: sampling, EMA, probe ----------------------------------------------------------------


def test_sample_for_given_and_for_uniform_labels(vectors):
    trainer = Trainer(_config(vectors, ema_decay=0.5))
    trainer.train_iteration()
    labels = torch.tensor([3, 3, 7, 0])
    x = trainer.sample(4, seed=5, labels=labels)
    z = torch.randn(4, trainer.config.latent_dim, generator=torch.Generator().manual_seed(5))
    ema = trainer.generator_ema.eval()
    torch.testing.assert_close(x, ema(z, labels), rtol=0, atol=0)  # the EMA generator, in eval mode
    # Without labels: i.i.d. uniform ones from the same seeded stream, after z; reported with the samples.
    _, drawn_labels = trainer.sample_labelled(2000, seed=5)
    g = torch.Generator().manual_seed(5)
    torch.randn(2000, trainer.config.latent_dim, generator=g)
    assert torch.equal(drawn_labels, torch.randint(K, (2000,), generator=g))
    counts = torch.bincount(drawn_labels, minlength=K)
    assert counts.min() > 150 and counts.max() < 250  # 200 expected per class
    with pytest.raises(UserError, match=r"labels must be in 0..9"):
        trainer.sample(2, seed=0, labels=torch.tensor([0, 10]))


def test_unconditional_trainer_refuses_labels_and_draws_none(vectors):
    trainer = Trainer(_config(vectors, "none"))
    assert trainer.n_classes == 0 and not trainer.data.labelled
    with pytest.raises(UserError, match="this run is unconditional"):
        trainer.sample(2, seed=0, labels=torch.tensor([0, 1]))
    assert "n_classes" not in trainer.state_dict()


def test_class_rows_repeat_one_latent_per_column(vectors):
    trainer = Trainer(_config(vectors))
    images, columns = class_rows(trainer, 3, seed=11)
    assert columns == 3 and images.shape == (K * 3, 2)
    z = torch.randn(3, trainer.config.latent_dim, generator=torch.Generator().manual_seed(11))
    for k in range(K):
        expected = trainer.sample_from(z, torch.full((3,), k))
        # The same math on a batch of 30 rows instead of 3: equal up to the BLAS's blocking.
        torch.testing.assert_close(images[3 * k : 3 * k + 3], expected, rtol=1e-6, atol=1e-7)


def test_probe_uses_the_given_labels(vectors):
    trainer = Trainer(_config(vectors, "projection"))
    real = torch.randn(16, 2)
    a = trainer.probe_grad_norm(real, torch.zeros(16, dtype=torch.int64))
    b = trainer.probe_grad_norm(real, torch.full((16,), 5))
    assert torch.isfinite(a) and torch.isfinite(b) and float(a) != float(b)  # y enters the critic
    assert float(trainer.probe_grad_norm(real, torch.zeros(16, dtype=torch.int64))) == float(a)


def test_n_classes_from_config_beyond_the_data(vectors):
    # K may exceed the labels present (classes without data); the models get K outputs/rows.
    trainer = Trainer(_config(vectors, n_classes=12))
    assert trainer.n_classes == 12
    assert trainer.critic.heads.classifier.out_features == 12


# --- runs: resume, torchrun, the CLI ---------------------------------------------------------------


def _train(out: Path, vectors: Path, steps: int, conditioning="acgan", **extra) -> None:
    sets = VECTOR_RUN | {"conditioning": conditioning, "penalty_weight": 10.0} | extra
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]
    data = ["--dataset", "vectors", "--data-path", str(vectors)]
    argv = ["train", "--out", str(out), "--steps", str(steps), *args, *QUIET[:-2], *data]
    assert main(argv) == 0


def _same_tensors(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _same_tensors(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same_tensors(x, y)


@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_resume_is_bit_exact(vectors, tmp_path, conditioning):
    _train(tmp_path / "straight", vectors, 4, conditioning, ema_decay=0.9)
    _train(tmp_path / "stopped", vectors, 2, conditioning, ema_decay=0.9)
    resume = [
        "train",
        "--resume",
        str(tmp_path / "stopped"),
        "--steps",
        "4",
        "--no-progress",
        "--no-tensorboard",
    ]
    assert main(resume) == 0
    a, b = (checkpoint_state(tmp_path / d, 4) for d in ("straight", "stopped"))
    assert a["n_classes"] == b["n_classes"] == K
    for key in ("generator", "critic", "generator_ema", "generator_opt", "critic_opt", "rng"):
        _same_tensors(a[key], b[key])


# A projection critic's last hidden biases get gradients that are exactly 0 in exact arithmetic while their
# unit is active on every row (real and fake rows share the labels, so their (ψ + E[y]) terms cancel); in
# floats they are ~1e-7 of rounding, whose sign depends on the summation order, and Adam with ε = 1e-8 turns
# each into a full ±lr step. Once the unit turns off on some row the entry's gradient is real, and the two
# runs carry the earlier ±lr apart (measured: 1e-3 relative on that tensor, the same for every seed; with
# ε = 1e-6, 1e-5, 1e-4 it fell to 2e-4, 1e-5, 7e-7: proportional to 1/ε, so it is Adam's sign on noise
# and not the sharding). With ε = 1e-4 Adam is continuous at g = 0 and 2 processes must equal 1 process.
@pytest.mark.parametrize(("conditioning", "extra"), [("acgan", {}), ("projection", {"optimizer_eps": 1e-4})])
def test_two_processes_train_as_one(vectors, tmp_path, conditioning, extra):
    # Each rank draws the global batch's labels and keeps its rows; gradients summed: one process's run.
    # The one-process reference is launched the same way (a fresh process, not this test process).
    sets = VECTOR_RUN | {"conditioning": conditioning, "penalty_weight": 10.0, "batch_size": 31} | extra
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]
    data = ["--dataset", "vectors", "--data-path", str(vectors)]
    for nproc, name in ((2, "two"), (1, "one")):
        torchrun(nproc, ["--out", str(tmp_path / name), "--steps", "2", *args, *QUIET[:-2], *data])
    assert_same_training(checkpoint_state(tmp_path / "two", 2), checkpoint_state(tmp_path / "one", 2))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """A tiny AC-GAN DCGAN on digits, 2 iterations; its last step evaluates and draws the final grid."""
    out = tmp_path_factory.mktemp("digits") / "run"
    sets = {"steps": 2, "conv_width": 8, "eval_samples": 200, "grid_samples": 30, "checkpoint_every": 2}
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]
    argv = [
        "train",
        "--preset",
        "digits-acgan",
        "--out",
        str(out),
        *args,
        "--no-progress",
        "--no-tensorboard",
    ]
    assert main([*argv, "--device", "cpu"]) == 0
    return out


def test_digits_run_reports_class_consistency_and_draws_one_row_per_class(digits_run):
    rows = [json.loads(line) for line in (digits_run / "metrics.jsonl").read_text().splitlines()]
    metrics = rows[-1]
    assert {"fd", "class_consistency", "class_fd"} <= set(metrics)
    per_class = [metrics[f"class_consistency/{k}"] for k in range(10)]
    assert min(per_class) >= 0.0 and max(per_class) <= 1.0
    finite = [v for v in per_class if np.isfinite(v)]
    assert metrics["class_consistency"] == pytest.approx(np.mean(finite), abs=1e-9)
    # 10 rows of 30 // 10 = 3 digits, each 8 px (×4) with 2 px padding (×4): (10·10 + 2)·4 by (3·10 + 2)·4.
    with Image.open(digits_run / "samples" / "final.png") as grid:
        assert grid.size == ((3 * 10 + 2) * 4, (10 * 10 + 2) * 4)


def test_eval_reports_class_consistency(digits_run, capsys):
    capsys.readouterr()
    assert main(["eval", str(digits_run), "--samples", "300", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 300
    assert 0.0 <= out["class_consistency"] <= 1.0 and out["class_fd"] > 0
    assert {f"class_consistency/{k}" for k in range(10)} <= set(out)


@pytest.mark.parametrize("chosen", ["3", "all"])
def test_sample_class_to_npz(digits_run, tmp_path, chosen):
    out = tmp_path / "s.npz"
    assert (
        main(["sample", str(digits_run), "-n", "6", "--class", chosen, "--out", str(out), "--device", "cpu"])
        == 0
    )
    with np.load(out) as arrays:
        assert sorted(arrays.files) == ["images", "labels", "samples"]
        samples, images, labels = arrays["samples"], arrays["images"], arrays["labels"]
    n = 6 if chosen == "3" else 60
    assert samples.shape == (n, 1, 8, 8) and samples.dtype == np.float32
    assert images.shape == (n, 8, 8, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    expected = np.full(6, 3) if chosen == "3" else np.repeat(np.arange(10), 6)
    assert np.array_equal(labels, expected)
    assert samples.min() >= -1.0 and samples.max() <= 1.0
    # The same samples as the trainer's for these labels and the same seed.
    trainer = load_run(digits_run, device="cpu")
    if chosen == "3":
        again = trainer.sample(6, seed=0, labels=torch.from_numpy(labels)).numpy()
    else:
        again = class_rows(trainer, 6, seed=0)[0].numpy()
    np.testing.assert_allclose(samples, again, rtol=0, atol=0)


def test_sample_class_all_to_png_has_one_row_per_class(digits_run, tmp_path):
    out = tmp_path / "grid.png"
    assert (
        main(["sample", str(digits_run), "-n", "4", "--class", "all", "--out", str(out), "--device", "cpu"])
        == 0
    )
    with Image.open(out) as grid:
        assert grid.size == (4 * 10 + 2, 10 * 10 + 2)  # 4 columns, 10 rows of 8 px with 2 px padding


def test_sample_without_class_writes_the_drawn_labels(digits_run, tmp_path):
    out = tmp_path / "s.npz"
    assert main(["sample", str(digits_run), "-n", "500", "--out", str(out), "--device", "cpu"]) == 0
    with np.load(out) as arrays:
        labels = arrays["labels"]
    assert labels.shape == (500,) and set(np.unique(labels)) == set(range(10))


def test_checkpoint_records_n_classes_so_sampling_needs_no_data(digits_run, tmp_path, monkeypatch):
    state = load_checkpoint(digits_run / "checkpoint.pt")
    assert state["n_classes"] == 10 and state["config"]["conditioning"] == "acgan"
    shutil.copytree(digits_run, tmp_path / "run")
    import wgangp.data.sampler as sampler_module

    def no_labels(self):
        raise AssertionError("sampling read the labels")

    monkeypatch.setattr(sampler_module.ArraySampler, "n_classes", property(no_labels))
    assert load_run(tmp_path / "run", device="cpu").n_classes == 10
