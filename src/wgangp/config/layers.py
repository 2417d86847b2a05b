"""How a run's config is layered: defaults → saved run → preset → loss recipe → file → flags → ``--set``."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wgangp.config.presets import LOSS_RECIPES, PRESETS
from wgangp.config.schema import FIELD_TYPES, TrainConfig, config_from_dict
from wgangp.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["load_config_file", "parse_set", "resolve_config"]


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
        value: Any = kind(text) if kind is not int else int(float(text)) if _is_integral(text) else int(text)
    except ValueError:
        raise UserError(f"{key} must be a {kind.__name__}; got {text!r}") from None
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


def _is_integral(text: str) -> bool:
    """Accept 1e5 or 2000.0 for integer fields, but not 2.5."""
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value == int(value)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Keys from a TOML file (top level, or a ``[train]`` table) or a saved ``config.json``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = json.loads(path.read_text()) if path.suffix == ".json" else tomllib.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"cannot parse config file {path}: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a table of keys")
    data = data.get("train", data)
    if not isinstance(data, dict):
        raise UserError(f"config file {path}: [train] must be a table")
    return data


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
    if config_file is not None:
        values |= load_config_file(config_file)
    values |= dict(overrides or {})
    for item in sets:
        key, value = parse_set(item)
        values[key] = value
    return config_from_dict(values)
