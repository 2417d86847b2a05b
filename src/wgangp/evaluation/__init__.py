"""Evaluation: one seam for what each kind of data knows (reference set, metrics, pictures, seeds).

:func:`kind_for` returns the :class:`~wgangp.evaluation.base.DataKind` serving a config's dataset. Every
module of this package is imported on first use, so a new kind registers itself by being defined in a
new module here: toy sets (:mod:`.toy`), images (:mod:`.images`), vectors (:mod:`.vectors`), text
(:mod:`.text`) and 1-d signals (:mod:`.sequences`).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from wgangp.config import TrainConfig, field_choices
from wgangp.errors import UserError
from wgangp.evaluation.base import (
    EVAL_COMMAND_REAL_SEED,
    GRID_SEED,
    MONITOR_SEED_OFFSET,
    REFERENCE_SEED_OFFSET,
    DataKind,
    EvalRequest,
    MetricSpec,
    Sampler,
    registered_kinds,
)

__all__ = [
    "EVAL_COMMAND_REAL_SEED",
    "GRID_SEED",
    "MONITOR_SEED_OFFSET",
    "REFERENCE_SEED_OFFSET",
    "DataKind",
    "EvalRequest",
    "MetricSpec",
    "comparable_datasets",
    "kind_class",
    "kind_for",
]


def _kinds() -> dict[str, type[DataKind]]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return registered_kinds()


def kind_class(dataset: str) -> type[DataKind]:
    """The kind serving ``dataset``."""
    kinds = _kinds()
    if dataset not in kinds:
        raise UserError(f"no evaluation for dataset {dataset!r}; known: {', '.join(sorted(kinds))}")
    return kinds[dataset]


def kind_for(config: TrainConfig, sampler: Sampler | None = None, cache_dir: Path | None = None) -> DataKind:
    """The kind for ``config.dataset``, with its fixed reference set drawn (from ``sampler`` where needed)."""
    return kind_class(config.dataset)(config, sampler, cache_dir)


def comparable_datasets() -> tuple[str, ...]:
    """The datasets ``wgangp compare`` offers: embedded ones of kinds that rank methods, in a stable order."""
    kinds = _kinds()
    # Dataset names in the config schema's order (toy sets first), not the modules' import order.
    return tuple(
        d for d in field_choices("dataset") if d in kinds and kinds[d].compares and d in kinds[d].embedded
    )
