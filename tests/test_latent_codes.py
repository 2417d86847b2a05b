"""InfoGAN's categorical code (``latent_codes``, ``info_scale``; ``wgangp.models.coded``): the code of z,
the coded generator, the update steps against hand-written ones, and runs that learn, resume and shard.

The runs train an MLP on four unlabelled clusters of 2-d points (a ``.npy``: no labels are read).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from step_util import sgd_state
from torchrun_util import QUIET, SMALL, assert_same_training, checkpoint_state, torchrun
from wgangp.cli import main
from wgangp.config import resolve_config
from wgangp.models import CodedGenerator
from wgangp.models.coded import latent_code
from wgangp.penalty import gradient_penalty
from wgangp.run.log import read_metrics
from wgangp.run.rundir import load_run
from wgangp.step.spec import StepSpec
from wgangp.step.update import critic_update, generator_update
from wgangp.trainer import build_models

K = 4  # clusters of the data, and categories of the code
RUN = {key: value for key, value in SMALL.items() if key != "dist_timeout"} | {
    "width": 32,
    "latent_dim": 8,
    "latent_codes": K,
    "batch_size": 32,
    "penalty_weight": 10.0,
}


@pytest.fixture(autouse=True)
def _one_process_here(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def clusters(tmp_path_factory) -> Path:
    """800 unlabelled 2-d points in four tight clusters at (±1, ±1)."""
    rng = np.random.default_rng(0)
    centres = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float32)
    x = centres[rng.integers(0, K, 800)] + 0.05 * rng.standard_normal((800, 2)).astype(np.float32)
    path = tmp_path_factory.mktemp("clusters") / "clusters.npy"
    np.save(path, x.astype(np.float32))
    return path


def _config(clusters: Path, **overrides):
    values = {"dataset": "vectors", "data_path": str(clusters), "device": "cpu", **RUN}
    return resolve_config("toy", overrides=values | overrides)


def _sgd_state(config, lr=1e-2):
    return sgd_state(config, lr=lr)


# --- the code and the coded generator -----------------------------------------------------------------


def test_the_code_is_the_argmax_of_zs_first_entries_and_uniform():
    z = torch.randn(100_000, 6, generator=torch.Generator().manual_seed(0))
    codes = latent_code(z, 4)
    assert torch.equal(codes, z[:, :4].argmax(1))
    share = torch.bincount(codes, minlength=4).float() / z.shape[0]
    assert torch.allclose(share, torch.full((4,), 0.25), atol=0.006)  # 5 σ of a binomial share


def test_coded_generator_feeds_the_code_of_z_as_the_label(clusters):
    generator, _ = build_models(_config(clusters))
    assert isinstance(generator, CodedGenerator) and generator.codes == K
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    inner = generator.inner
    assert torch.equal(generator(z), inner(z, z[:, :K].argmax(1)))
    # The code matters: the same z with another label gives another sample.
    assert not torch.equal(generator(z), inner(z, (z[:, :K].argmax(1) + 1) % K))
    with pytest.raises(ValueError, match="at least 2 categories"):
        CodedGenerator(inner, 1)


def test_critic_has_q_head_only_with_a_positive_info_scale(clusters):
    _, with_head = build_models(_config(clusters))
    _, without = build_models(_config(clusters, info_scale=0.0))
    _, plain = build_models(_config(clusters, latent_codes=0))
    scores, logits = with_head.score_and_logits(torch.randn(5, 2))
    assert scores.shape == (5,) and logits.shape == (5, K)
    assert not hasattr(without, "score_and_logits") or without.heads is None
    for a, b in zip(without.state_dict().values(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # info_scale=0: exactly the unconditional critic


# --- the update steps against hand-written ones --------------------------------------------------------


@pytest.mark.parametrize("info_scale", [0.0, 0.7])
def test_critic_update_adds_the_code_cross_entropy_on_the_fakes(clusters, info_scale):
    config = _config(clusters, info_scale=info_scale)
    state = _sgd_state(config)
    by_hand = copy.deepcopy(state)
    real = torch.randn(config.batch_size, 2, generator=torch.Generator().manual_seed(3))
    stats = critic_update(state, StepSpec.from_config(config), real, penalise=True)

    g, d, noise = by_hand.generator, by_hand.critic, by_hand.noise
    z = torch.randn(config.batch_size, config.latent_dim, generator=noise)
    with torch.no_grad():
        fake = g(z)
    n = config.batch_size
    if info_scale:
        scores, logits = d.score_and_logits(torch.cat([real, fake]))
        info = F.cross_entropy(logits[n:], z[:, :K].argmax(1))
    else:
        scores, info = d(torch.cat([real, fake])), torch.zeros(())
    loss = scores[n:].mean() - scores[:n].mean() + info_scale * info
    penalty = gradient_penalty(d, real, fake, generator=noise)
    by_hand.critic_opt.zero_grad()
    (loss + 10.0 * penalty).backward()
    by_hand.critic_opt.step()

    for a, b in zip(state.critic.parameters(), by_hand.critic.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(stats["critic_loss"], loss.detach(), rtol=1e-6, atol=1e-7)
    assert ("info_loss" in stats) == bool(info_scale)
    if info_scale:
        torch.testing.assert_close(stats["info_loss"], info.detach(), rtol=1e-6, atol=1e-7)
        accuracy = (logits[n:].argmax(1) == z[:, :K].argmax(1)).float().mean()
        assert float(stats["info_accuracy"]) == pytest.approx(float(accuracy), abs=1e-7)
    assert torch.equal(state.noise.get_state(), noise.get_state())  # no extra draws for the code


@pytest.mark.parametrize("info_scale", [0.0, 0.7])
def test_generator_update_adds_the_code_cross_entropy(clusters, info_scale):
    config = _config(clusters, info_scale=info_scale)
    state = _sgd_state(config)
    by_hand = copy.deepcopy(state)
    stats = generator_update(state, StepSpec.from_config(config), 32, torch.device("cpu"))

    g, d, noise = by_hand.generator, by_hand.critic, by_hand.noise
    z = torch.randn(32, config.latent_dim, generator=noise)
    fake = g(z)
    if info_scale:
        scores, logits = d.score_and_logits(fake)
        loss = -scores.mean() + info_scale * F.cross_entropy(logits, z[:, :K].argmax(1))
    else:
        loss = -d(fake).mean()
    by_hand.generator_opt.zero_grad()
    loss.backward()
    by_hand.generator_opt.step()
    for a, b in zip(state.generator.parameters(), by_hand.generator.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(stats["generator_loss"], loss.detach(), rtol=1e-6, atol=1e-7)
    assert ("generator_info_loss" in stats) == bool(info_scale)
    assert all(p.grad is None for p in state.critic.parameters())


def test_penalty_differentiates_the_score_alone(clusters):
    # Q's logits must not enter the penalty: the norm is of ∇ score, as for an unheaded critic.
    config = _config(clusters)
    _, critic = build_models(config)
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    gen = torch.Generator().manual_seed(5)
    eps = torch.rand(8, 1, generator=copy.deepcopy(gen))
    points = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grads,) = torch.autograd.grad(critic.score_and_logits(points)[0].sum(), points)
    expected = ((grads.norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(gradient_penalty(critic, real, fake, generator=gen), expected)


# --- runs ------------------------------------------------------------------------------------------------


def _argv(out: Path, clusters: Path, steps: int, **extra) -> list[str]:
    sets = RUN | extra
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]
    data = ["--dataset", "vectors", "--data-path", str(clusters)]
    return ["--out", str(out), "--steps", str(steps), *args, *QUIET[:-2], *data]


def test_q_learns_the_code_and_each_code_makes_one_cluster(clusters, tmp_path):
    # 600 iterations of Adam: Q recovers the code of most fakes, and the generator has split the clusters
    # between the codes, each code's samples mostly in one cluster (the point of the code).
    out = tmp_path / "run"
    sets = {"lr_critic": 1e-3, "lr_generator": 1e-3, "log_every": 50}
    assert main(["train", *_argv(out, clusters, 600, **sets)]) == 0
    last = [r for r in read_metrics(out) if "info_accuracy" in r][-1]
    assert last["info_accuracy"] > 0.95
    trainer = load_run(out, device="cpu")
    z = torch.randn(2000, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        x = trainer.generator(z)
    cluster = (x[:, 0] > 0).long() * 2 + (x[:, 1] > 0).long()
    codes = latent_code(z, K)
    purity = [
        torch.bincount(cluster[codes == c], minlength=K).max().item() / int((codes == c).sum())
        for c in range(K)
    ]
    assert min(purity) > 0.8, purity


def test_resume_is_bit_exact(clusters, tmp_path):
    assert main(["train", *_argv(tmp_path / "straight", clusters, 4, ema_decay=0.9)]) == 0
    assert main(["train", *_argv(tmp_path / "stopped", clusters, 2, ema_decay=0.9)]) == 0
    assert main(["train", "--resume", str(tmp_path / "stopped"), "--steps", "4", *QUIET[:-2]]) == 0
    a, b = (checkpoint_state(tmp_path / d, 4) for d in ("straight", "stopped"))
    for key in ("generator", "critic", "generator_ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"


def test_two_processes_train_as_one(clusters, tmp_path):
    # Each rank computes the codes of its rows of the global z; the gradients summed: one process's run.
    for nproc, name in ((2, "two"), (1, "one")):
        torchrun(nproc, _argv(tmp_path / name, clusters, 2, batch_size=31))
    assert_same_training(checkpoint_state(tmp_path / "two", 2), checkpoint_state(tmp_path / "one", 2))


def test_a_presets_code_gives_way_to_labels_and_models_without_class_inputs():
    from wgangp.errors import UserError

    assert resolve_config("digits").latent_codes == 10
    assert resolve_config("digits", sets=["conditioning=acgan"]).latent_codes == 0
    assert resolve_config("digits-acgan").latent_codes == 0
    with pytest.raises(UserError, match="latent_codes is the unsupervised code"):
        resolve_config("digits", sets=["conditioning=acgan", "latent_codes=10"])
    # ... and to a model without class inputs or a latent shorter than the code, unless chosen.
    assert resolve_config("digits", sets=["model=factored"]).latent_codes == 0
    assert resolve_config("digits", sets=["latent_dim=4"]).latent_codes == 0
    assert resolve_config("digits", sets=["model=dcgan"]).latent_codes == 10
    with pytest.raises(UserError, match="at most latent_dim=4"):
        resolve_config("digits", sets=["latent_dim=4", "latent_codes=10"])


def test_code_purity_counts_each_codes_majority_class():
    from wgangp.metrics.conditional import code_purity

    stats = code_purity(torch.tensor([3, 3, 3, 5]), torch.tensor([0, 0, 1, 1]))
    assert stats == {"code_purity": 0.75, "code_classes": 1.0}
    perfect = code_purity(torch.tensor([2, 2, 7, 7, 4]), torch.tensor([0, 0, 1, 1, 2]))
    assert perfect == {"code_purity": 1.0, "code_classes": 3.0}
    with pytest.raises(ValueError, match="must both be"):
        code_purity(torch.tensor([1, 2]), torch.tensor([1]))


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory) -> Path:
    """The digits preset (with its 10-way code) at W=8 for 4 iterations, evaluated at the end."""
    out = tmp_path_factory.mktemp("coded") / "digits"
    sets = {"steps": 4, "conv_width": 8, "eval_samples": 200, "eval_every": 4, "checkpoint_every": 4}
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]
    argv = ["train", "--dataset", "digits", "--out", str(out), *args, "--no-progress", "--no-tensorboard"]
    assert main([*argv, "--device", "cpu"]) == 0
    return out


def test_a_coded_digits_run_reports_how_its_codes_match_the_classes(tiny_digits, capsys):
    # In-run evaluation and `wgangp eval` both add code_purity / code_classes; the purity is recomputed here
    # from the same fixed latents and the same classifier.
    import json

    out = tiny_digits
    last = [r for r in read_metrics(out) if "code_purity" in r][-1]
    assert 0.0 < last["code_purity"] <= 1.0 and 1 <= last["code_classes"] <= 10
    capsys.readouterr()
    assert main(["eval", str(out), "--samples", "300", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    trainer = load_run(out, device="cpu")
    from wgangp.metrics.conditional import code_purity
    from wgangp.metrics.images import classifier_metrics

    scorer = classifier_metrics(trainer.config, cache_dir=out, reference_samples=300)
    _, probs = scorer.embed(trainer.sample(300, seed=0).cpu())
    expected = code_purity(
        probs.argmax(1), latent_code(torch.randn(300, 16, generator=torch.Generator().manual_seed(0)), 10)
    )
    assert report["code_purity"] == pytest.approx(expected["code_purity"])
    assert report["code_classes"] == expected["code_classes"]


def test_with_code_sets_the_code_and_keeps_zs_distribution():
    from wgangp.models.coded import with_code

    z = torch.randn(20_000, 6, generator=torch.Generator().manual_seed(2))
    codes = torch.randint(0, 4, (20_000,), generator=torch.Generator().manual_seed(3))
    moved = with_code(z, codes, 4)
    assert torch.equal(latent_code(moved, 4), codes)
    assert torch.equal(moved[:, 4:], z[:, 4:])  # entries past the code are untouched
    assert torch.equal(moved.sort(1).values, z.sort(1).values)  # a permutation of each row
    already = latent_code(z, 4)
    assert torch.equal(with_code(z, already, 4), z)
    # Given its code, z's other first entries are the K-1 smaller ones in random order: the same law as
    # for a z drawn with that code (each entry's mean, the code's being the largest).
    drawn = z[already == 1]
    torch.testing.assert_close(moved[codes == 1][:, :4].mean(0), drawn[:, :4].mean(0), atol=0.05, rtol=0)
    with pytest.raises(ValueError, match="codes must be"):
        with_code(z[:2], torch.tensor([0, 4]), 4)


def test_sample_code_draws_each_codes_samples(tiny_digits, tmp_path, capsys):
    out = tiny_digits
    assert main(["sample", str(out), "-n", "3", "--code", "all", "--out", str(tmp_path / "g.png")]) == 0
    from PIL import Image

    width, height = Image.open(tmp_path / "g.png").size
    assert height > width * 10 / 3 * 0.8  # 10 rows (one per code) of 3 columns
    assert main(["sample", str(out), "-n", "5", "--code", "7", "--out", str(tmp_path / "s.npz")]) == 0
    saved = np.load(tmp_path / "s.npz")
    assert saved["codes"].tolist() == [7] * 5 and saved["images"].shape == (5, 8, 8, 1)
    trainer = load_run(out, device="cpu")
    from wgangp.models.coded import with_code

    z = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    expected = trainer.sample_from(with_code(z, torch.full((5,), 7), 10))
    torch.testing.assert_close(torch.from_numpy(saved["samples"]), expected)
    capsys.readouterr()
    assert main(["sample", str(out), "-n", "2", "--code", "10", "--out", str(tmp_path / "x.npy")]) == 2
    assert "--code 10 is out of range: this run has 10 codes" in capsys.readouterr().err
    assert main(["sample", str(out), "-n", "2", "--class", "1", "--out", str(tmp_path / "x.npy")]) == 2
    assert "this run is unconditional (its 10 latent codes: --code)" in capsys.readouterr().err


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_coded_step_follows_fp32(clusters, precision):
    real = torch.randn(32, 2, generator=torch.Generator().manual_seed(3))
    grads = {}
    for p in ("fp32", precision):
        config = _config(clusters, precision=p, width=64, info_scale=0.7)
        state = _sgd_state(config, lr=0.0)  # lr 0: p.grad stays as computed
        if p == "fp16":
            state.critic_scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        stats = critic_update(state, StepSpec.from_config(config), real, penalise=True)
        assert "info_loss" in stats
        grads[p] = [q.grad.clone() for q in state.critic.parameters()]
    differences = [
        float((a - b).norm() / b.norm().clamp_min(1e-12))
        for a, b in zip(grads[precision], grads["fp32"], strict=True)
    ]
    assert 1e-6 < max(differences) < 0.1  # low precision really ran, and stayed close (Q's head included)


@pytest.mark.slow  # compiling a double backward takes ~1 min on 2 busy cores
def test_compiled_coded_objective_matches_eager(clusters):
    real = torch.randn(32, 2, generator=torch.Generator().manual_seed(3))
    states = []
    for compile_ in (False, True):
        config = _config(clusters, compile=compile_)
        state = _sgd_state(config)
        states.append((state, critic_update(state, StepSpec.from_config(config), real, penalise=True)))
    (eager, eager_stats), (compiled, compiled_stats) = states
    assert compiled_stats.keys() == eager_stats.keys() and "info_loss" in eager_stats
    for a, b in zip(compiled.critic.parameters(), eager.critic.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
