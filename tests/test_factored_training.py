"""Training the factored networks: config keys, BatchNorm critics for the penalty-free losses, LSGAN, weight decay.

Mirrors the wiring of :mod:`wgangp.models.factored` into the config (``model = factored``), the update step
(two critic forwards with BatchNorm) and the trainer (the critic check, the gradient-norm probe).
"""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest
import torch

from wgangp.config import TrainConfig, resolve_config
from wgangp.config.schema import ACTIVATIONS as CONFIG_ACTIVATIONS
from wgangp.errors import UserError
from wgangp.losses import critic_loss
from wgangp.models import architecture_of
from wgangp.models.activations import ACTIVATIONS
from wgangp.models.factored import Architecture
from wgangp.step.spec import StepSpec
from wgangp.step.update import critic_update
from wgangp.trainer import Trainer, build_models

SMALL = {"batch_size": 16, "eval_samples": 64, "conv_width": 8, "latent_dim": 16, "steps": 4}


def digits(loss: str = "wgan-gp", **keys) -> TrainConfig:
    return resolve_config("digits", loss=loss, overrides={"device": "cpu", **SMALL, **keys})


def test_the_config_offers_every_activation():
    assert CONFIG_ACTIVATIONS == ACTIVATIONS


# Config key -> (value, the Architecture field it sets, the value there).
FACTOR_KEYS = [
    ("activation", "tanh", "activation", "tanh"),
    ("critic_activation", "softplus", "critic_activation", "softplus"),
    ("conv_depth", 6, "depth", 6),
    ("conv_width", 16, "width", 16),
    ("generator_filters", "constant", "generator_filters", "constant"),
    ("critic_filters", "constant", "critic_filters", "constant"),
    ("generator_norm", "none", "generator_norm", "none"),
    ("critic_norm", "layer", "critic_norm", "layer"),
    ("residual", True, "residual", True),
    ("generator_model", "mlp", "generator", "mlp"),
    ("width", 64, "mlp_width", 64),
    ("depth", 2, "mlp_depth", 2),
]


@pytest.mark.parametrize(("key", "value", "field", "expected"), FACTOR_KEYS, ids=[k[0] for k in FACTOR_KEYS])
def test_each_config_key_sets_its_architecture_factor(key, value, field, expected):
    config = digits(model="factored", **{key: value})
    arch = architecture_of(config)
    default = architecture_of(digits(model="factored"))
    assert getattr(arch, field) == expected
    assert dataclasses.replace(arch, **{field: getattr(default, field)}) == default  # nothing else moved


def test_factored_with_the_default_factors_is_the_dcgan_of_the_same_seed():
    # At 8×8 one resolution step: conv_depth 1 with ReLU G, LeakyReLU D, doubling filters is DCGAN.
    dcgan = build_models(digits(model="dcgan", latent_codes=0))  # factored drops the preset's code itself
    factored = build_models(digits(model="factored", conv_depth=1))
    for reference, network in zip(dcgan, factored, strict=True):
        expected = [p.detach() for p in reference.parameters()]
        got = [p.detach() for p in network.parameters()]
        assert [p.shape for p in got] == [p.shape for p in expected]
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    z = torch.randn(4, 16)
    torch.testing.assert_close(factored[0].eval()(z), dcgan[0].eval()(z), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"critic_norm": "batch"}, "critic_norm must be one of none, layer with loss wgan-gp"),
        ({"model": "factored", "critic_norm": "batch"}, "critic_norm must be one of none, layer"),
        ({"model": "factored", "activation": "swish"}, "activation must be one of relu, leaky_relu"),
        ({"model": "factored", "conv_depth": 0}, "conv_depth must be in [1, inf)"),
        ({"activation": "tanh"}, "activation set, but only model factored uses it"),
        ({"residual": True, "conv_depth": 8}, "conv_depth, residual set, but only model factored"),
        ({"weight_decay": -1.0}, "weight_decay must be in [0, inf)"),
    ],
)
def test_bad_factor_values_are_one_line_errors(keys, message):
    with pytest.raises(UserError, match=re.escape(message)):
        digits(**keys)


def test_batchnorm_critic_needs_model_factored():
    with pytest.raises(UserError, match="critic_norm batch needs model factored; model dcgan has none"):
        digits("gan", model="dcgan", critic_norm="batch")


def test_shapes_the_factors_cannot_make_are_user_errors():
    with pytest.raises(UserError, match="model factored: a residual depth is 3·blocks"):
        Trainer(digits(model="factored", residual=True, conv_depth=7))


def test_lsgan_recipe_is_the_papers_baseline():
    config = resolve_config("digits", loss="lsgan")
    assert (config.loss, config.optimizer, config.lr_critic, config.lr_generator) == (
        "lsgan",
        "adam",
        2e-4,
        2e-4,
    )
    assert (config.beta1, config.beta2, config.n_critic) == (0.5, 0.999, 1)


def test_lsgan_trains_through_the_update_step():
    trainer = Trainer(digits("lsgan", model="factored", conv_depth=2))
    stats = trainer.train_iteration()
    assert set(stats) == {"critic_loss", "wasserstein", "generator_loss"}
    assert all(torch.isfinite(v) for v in stats.values())


@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_weight_decay_reaches_both_optimizers(decay):
    trainer = Trainer(digits(weight_decay=decay))
    for opt in (trainer.generator_opt, trainer.critic_opt):
        assert [g["weight_decay"] for g in opt.param_groups] == [decay]


def test_weight_decay_changes_the_update_by_its_l2_term():
    # Adam's coupled decay: the same step as adding decay·θ to the gradient, so a run with it differs.
    plain, decayed = Trainer(digits()), Trainer(digits(weight_decay=0.5))
    plain.train_iteration()
    decayed.train_iteration()
    diffs = [
        not torch.equal(a, b)
        for a, b in zip(plain.critic.parameters(), decayed.critic.parameters(), strict=True)
    ]
    assert any(diffs)


# ---------------------------------------------------------------------------------------------------------
# BatchNorm critics (gan, lsgan, wgan-clip).
# ---------------------------------------------------------------------------------------------------------


def batchnorm_trainer(loss: str) -> Trainer:
    return Trainer(digits(loss, model="factored", conv_depth=3, critic_norm="batch"))


def critic_batchnorms(trainer: Trainer) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in trainer.critic.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize("loss", ["gan", "lsgan", "wgan-clip"])
def test_penalty_free_losses_train_a_batchnorm_critic(loss):
    trainer = batchnorm_trainer(loss)
    layers = critic_batchnorms(trainer)
    assert layers
    trainer.train_iteration()
    trainer.train_iteration()
    # Per iteration: n_critic updates with two forwards each (real, fake), then the generator's forward.
    expected = 2 * (2 * trainer.config.n_critic + 1)
    assert [int(m.num_batches_tracked) for m in layers] == [expected] * len(layers)


def test_a_batchnorm_critic_scores_real_and_fake_in_two_forwards():
    trainer = batchnorm_trainer("gan")
    spec = StepSpec.from_config(trainer.config)
    assert spec.separate_critic_forwards
    real = trainer.data()
    critic = copy.deepcopy(trainer.critic)
    noise = torch.Generator().manual_seed(0)
    noise.set_state(trainer.noise.get_state())
    with torch.no_grad():
        fake = trainer.generator(torch.randn(spec.batch_size, spec.latent_dim, generator=noise))
    together = copy.deepcopy(critic)
    expected = critic_loss("gan", critic(real), critic(fake))  # the official code's two forwards
    mixed = critic_loss("gan", *together(torch.cat([real, fake])).split(real.shape[0]))
    stats = critic_update(trainer.state, spec, real, penalise=False)
    assert torch.equal(stats["critic_loss"], expected.detach())
    assert not torch.isclose(expected, mixed, rtol=1e-4)  # one forward would be a different loss
    for got, want in zip(
        critic_batchnorms(trainer),
        [m for m in critic.modules() if isinstance(m, torch.nn.BatchNorm2d)],
        strict=True,
    ):
        assert torch.equal(got.running_mean, want.running_mean) and torch.equal(
            got.running_var, want.running_var
        )


def test_norm_free_critics_keep_the_one_forward_step():
    for keys in ({}, {"model": "factored"}, {"model": "factored", "critic_norm": "layer"}):
        assert not StepSpec.from_config(digits(**keys)).separate_critic_forwards


def test_the_gradient_norm_probe_leaves_batchnorm_buffers_alone():
    trainer = batchnorm_trainer("gan")
    trainer.train_iteration()
    before = {k: v.clone() for k, v in trainer.critic.state_dict().items()}
    norm = trainer.probe_grad_norm(trainer.data())
    assert torch.isfinite(norm) and float(norm) > 0
    after = trainer.critic.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_penalised_critic_with_batchnorm_is_refused_by_the_trainer_check():
    # The config refuses it first; a hand-built config that skipped it would still meet the module walk.
    config = digits("gan", model="factored", critic_norm="batch")
    object.__setattr__(config, "loss", "wgan-gp")
    with pytest.raises(ValueError, match="critic contains BatchNorm"):
        Trainer(config)


def test_paper_critic_norm_for_each_loss_matches_the_config_rule():
    arch = Architecture(critic_norm="batch")
    for loss in ("gan", "lsgan", "wgan-clip", "wgan-gp"):
        norm = arch.for_loss(loss).critic_norm
        digits(loss, model="factored", critic_norm=norm)  # accepted
        assert norm == ("layer" if loss == "wgan-gp" else "batch")
