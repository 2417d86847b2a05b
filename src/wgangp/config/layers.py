"""How a run's config is layered: defaults → saved run → preset → loss recipe → file → flags → ``--set``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wgangp.config.presets import LOSS_RECIPES, PRESETS
from wgangp.config.schema import FIELD_TYPES, TrainConfig, code_conflict, config_from_dict, parse_int
from wgangp.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["explicit_keys", "load_config_file", "parse_set", "resolve_config"]


def parse_set(item: str) -> tuple[str, Any]:
    """``key=value`` from ``--set``, the value parsed to the field's type."""
    key, sep, text = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise UserError(f"--set takes key=value; got {item!r}")
    if key not in FIELD_TYPES:
        raise UserError(f"unknown config key: {key} (see `wgangp train --help-config`)")
    kind = FIELD_TYPES[key]
    text = text.strip()
    if kind is bool:
        if text.lower() not in _BOOLS:
            raise UserError(f"{key} must be true or false; got {text!r}")
        return key, _BOOLS[text.lower()]
    try:
        value: Any = parse_int(text) if kind is int else kind(text)
    except ValueError:
        word = {int: "an integer", float: "a number"}.get(kind, f"a {kind.__name__}")
        raise UserError(f"{key} must be {word}; got {text!r}") from None
    return key, value


_BOOLS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Keys from a TOML file (top level, or a ``[train]`` table) or a saved ``config.json``."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--config {path} is a directory; give the TOML file (e.g. {path / 'config.toml'})")
    if path.exists() and not path.is_file():
        raise UserError(f"--config {path} is not a regular file (a FIFO, socket or device); give a TOML file")
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = json.loads(path.read_text()) if path.suffix == ".json" else tomllib.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"cannot parse config file {path}: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a table of keys")
    if "train" not in data:
        return data
    table = data["train"]
    if not isinstance(table, dict):
        raise UserError(f"config file {path}: [train] must be a table")
    # Keys at the top level count too (other tables are left alone); one key set twice is refused.
    top = {key: value for key, value in data.items() if key != "train" and not isinstance(value, dict)}
    both = sorted(set(top) & set(table))
    if both:
        key = both[0]
        raise UserError(
            f"config file {path} sets {key} both at the top level ({top[key]!r}) and in [train] "
            f"({table[key]!r}); keep one"
        )
    return top | table


def explicit_keys(
    preset: str | None = None,
    *,
    config_file: str | Path | None = None,
    sets: list[str] | tuple[str, ...] = (),
    overrides: Mapping[str, Any] | None = None,
) -> set[str]:
    """The keys a user chose (a named preset, the file, flags, ``--set``), not left at a default.

    Defaults that depend on the data (``latent_dim`` for ``--dataset vectors``) apply only to other keys.
    """
    keys = set(PRESETS[preset][1]) if preset in PRESETS else set()
    if config_file is not None:
        keys |= set(load_config_file(config_file))
    keys |= set(overrides or {})
    keys |= {parse_set(item)[0] for item in sets}
    return keys


def resolve_config(
    preset: str | None = "fast",
    *,
    base: Mapping[str, Any] | None = None,
    loss: str | None = None,
    config_file: str | Path | None = None,
    sets: list[str] | tuple[str, ...] = (),
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Layer defaults → ``base`` → preset → loss recipe → config file → ``overrides`` → ``--set``.

    A preset's unsupervised code gives way: when ``latent_codes`` was not chosen in the file, ``overrides``
    or ``--set`` and cannot go with what was (class labels, a model without class inputs, a shorter
    latent), it is 0.

    ``base`` is a saved run's config (``--resume``): it replaces the defaults, and ``preset=None`` then
    leaves it as it is unless a layer above changes a key.
    """
    if preset is not None and preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    values: dict[str, Any] = TrainConfig().to_dict() | dict(base or {})
    if preset is not None:
        values |= PRESETS[preset][1]
    if loss is not None:
        if loss not in LOSS_RECIPES:
            raise UserError(f"--loss must be one of {', '.join(LOSS_RECIPES)}; got {loss!r}")
        values |= LOSS_RECIPES[loss]
    chosen: dict[str, Any] = dict(load_config_file(config_file)) if config_file is not None else {}
    chosen |= dict(overrides or {})
    for item in sets:
        key, value = parse_set(item)
        chosen[key] = value
    values |= chosen
    if "latent_codes" not in chosen and code_conflict(values):
        # A preset's unsupervised code (digits) gives way to a choice it cannot go with: labels
        # (--set conditioning=acgan), a model without class inputs, a latent shorter than the code.
        values["latent_codes"] = 0
    return config_from_dict(values)
