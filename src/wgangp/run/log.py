"""One logger for a run: rows of scalars to ``metrics.jsonl`` and, if it imports, TensorBoard."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["RunLogger", "read_metrics"]


class RunLogger:
    """Appends ``{"step": ..., "kind": ..., key: value}`` rows to ``metrics.jsonl``; scalars to TensorBoard."""

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self._file = self.path.open("a", encoding="utf-8")
        self._writer: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard is optional: metrics.jsonl holds everything
                self._writer = None
            else:
                self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def write(self, step: int, values: dict[str, float], *, group: str = "train") -> None:
        """One row ``{"step", "kind": group, ...}``: ``kind`` is ``train`` (log rows) or ``eval`` (metrics),
        so that e.g. ``pandas.read_json(path, lines=True).groupby("kind")`` splits them."""
        row = {"step": step, "kind": group, **{k: _plain(v) for k, v in values.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(f"{group}/{key}", value, step)

    def write_image(self, tag: str, image: Any, step: int) -> None:
        """An ``uint8 [H, W, C]`` image to TensorBoard (if it is on); metrics.jsonl holds no pictures."""
        if self._writer is not None:
            self._writer.add_image(tag, image, step, dataformats="HWC")

    def write_text(self, tag: str, text: str, step: int) -> None:
        """Markdown ``text`` to TensorBoard's text tab (if it is on), e.g. decoded samples."""
        if self._writer is not None:
            self._writer.add_text(tag, text, step)

    def close(self) -> None:
        self._file.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plain(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings so the file stays valid JSON Lines."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All rows of a run's ``metrics.jsonl`` (a torn last line, from a crash, is skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows
