"""The one exception type for mistakes a user can fix: the CLI prints it as one line and exits non-zero."""

from __future__ import annotations


class UserError(ValueError):
    """A bad input (option, file, run directory) explained in one line; the CLI exits with ``exit_code``."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RunInterrupted(Exception):
    """A run stopped by SIGINT/SIGTERM after saving a checkpoint; the CLI exits with ``exit_code`` (128 + signal)."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
