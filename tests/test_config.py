"""Config layering, presets, and the checks that turn bad values into one-line errors."""

from __future__ import annotations

import dataclasses

import pytest

from wgangp.config import LOSS_RECIPES, PRESETS, TrainConfig, describe_fields, parse_set, resolve_config
from wgangp.errors import UserError


def test_defaults_are_the_official_toy_recipe():
    config = resolve_config("toy")
    assert (config.width, config.depth, config.batch_size, config.n_critic) == (512, 3, 256, 5)
    assert (config.lr_critic, config.lr_generator, config.beta1, config.beta2) == (1e-4, 1e-4, 0.5, 0.9)
    assert config.penalty_weight == 0.1
    assert config.steps == 100_000
    assert resolve_config("toy-paper").penalty_weight == 10.0


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().steps = 3  # type: ignore[misc]


def test_layers_last_wins(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[train]\nsteps = 77\nwidth = 64\ndataset = "swissroll"\n')
    config = resolve_config(
        "fast", loss="wgan-clip", config_file=path, sets=["width=16"], overrides={"seed": 3}
    )
    assert (config.steps, config.width, config.dataset, config.seed) == (77, 16, "swissroll", 3)
    assert config.optimizer == "rmsprop" and config.lr_critic == 5e-5


def test_top_level_toml_and_json(tmp_path):
    (tmp_path / "a.toml").write_text("steps = 12\n")
    (tmp_path / "b.json").write_text('{"steps": 13}')
    assert resolve_config(config_file=tmp_path / "a.toml").steps == 12
    assert resolve_config(config_file=tmp_path / "b.json").steps == 13


@pytest.mark.parametrize("loss", list(LOSS_RECIPES))
def test_loss_recipes(loss):
    config = resolve_config("toy", loss=loss)
    for key, value in LOSS_RECIPES[loss].items():
        assert getattr(config, key) == value


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_resolve(preset):
    assert isinstance(resolve_config(preset), TrainConfig)


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("steps=10", "steps", 10),
        ("steps=1e3", "steps", 1000),
        ("lr-critic=3e-4", "lr_critic", 3e-4),
        ("loss=gan", "loss", "gan"),
        ("penalty_weight=10", "penalty_weight", 10.0),
        ("skip-nonfinite=true", "skip_nonfinite", True),
        ("skip_nonfinite=0", "skip_nonfinite", False),
    ],
)
def test_parse_set(item, key, value):
    assert parse_set(item) == (key, value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sets": ["nope=1"]}, "unknown config key: nope"),
        ({"sets": ["steps"]}, "key=value"),
        ({"sets": ["steps=abc"]}, "steps must be an integer"),
        ({"sets": ["steps=2.5"]}, "steps must be an integer"),
        ({"sets": ["steps=0"]}, "steps must be in [1, inf)"),
        ({"sets": ["batch_size=-4"]}, "batch_size must be in [1, inf)"),
        ({"sets": ["n_critic=0"]}, "n_critic must be in [1, inf)"),
        ({"sets": ["penalty_weight=-1"]}, "penalty_weight must be in [0, inf)"),
        ({"sets": ["lr_critic=0"]}, "lr_critic must be in (0, inf)"),
        ({"sets": ["lr_generator=nan"]}, "lr_generator must be finite"),
        ({"sets": ["penalty_fraction=1.5"]}, "penalty_fraction must be in (0, 1]"),
        ({"sets": ["dataset=imagenet"]}, "dataset must be one of 8gaussians"),
        ({"sets": ["device=tpu"]}, "device must be auto, cpu, cuda"),
        ({"loss": "hinge"}, "--loss must be one of"),
        ({"preset": "huge"}, "unknown preset 'huge'"),
        ({"overrides": {"steps": "10"}}, "steps must be an integer"),
        ({"overrides": {"steps": True}}, "steps must be an integer"),
    ],
)
def test_bad_values_are_one_line_user_errors(kwargs, message):
    preset = kwargs.pop("preset", "fast")
    with pytest.raises(UserError) as info:
        resolve_config(preset, **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_config_files(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        resolve_config(config_file=tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("steps = = 3")
    with pytest.raises(UserError, match="cannot parse config file"):
        resolve_config(config_file=tmp_path / "bad.toml")
    (tmp_path / "unknown.toml").write_text("colour = 3")
    with pytest.raises(UserError, match="unknown config key"):
        resolve_config(config_file=tmp_path / "unknown.toml")


def test_every_field_is_described():
    rows = describe_fields()
    assert {name for name, *_ in rows} == {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(text for *_, text in rows)
