"""The training configuration: its schema (one frozen dataclass), the presets, and how layers combine.

- :mod:`~wgangp.config.schema`: :class:`TrainConfig`, every default with its meaning, range and paper value;
- :mod:`~wgangp.config.presets`: the paper's recipes, our tuned ones and the baselines' recipes;
- :mod:`~wgangp.config.layers`: defaults → saved run → preset → ``--loss`` recipe → file → flags → ``--set``.
"""

from wgangp.config.layers import explicit_keys, load_config_file, parse_set, resolve_config
from wgangp.config.presets import DATASET_PRESETS, LOSS_RECIPES, METHOD_RECIPES, PRESETS
from wgangp.config.schema import (
    FIELD_TYPES,
    TrainConfig,
    config_from_dict,
    describe_fields,
    field_choices,
    parse_int,
)

__all__ = [
    "DATASET_PRESETS",
    "FIELD_TYPES",
    "LOSS_RECIPES",
    "METHOD_RECIPES",
    "PRESETS",
    "TrainConfig",
    "config_from_dict",
    "describe_fields",
    "explicit_keys",
    "field_choices",
    "load_config_file",
    "parse_int",
    "parse_set",
    "resolve_config",
]
