"""An exclusive lock on a run directory, so two processes never write the same run.

``fcntl.flock(RUN/.lock, LOCK_EX | LOCK_NB)``, with the holder's pid written into the file. The kernel
releases a ``flock`` when its process dies (even by SIGKILL), so a lock file left by a dead process is no
obstacle: the next locker takes it and writes its own pid. The file itself stays (unlinking it would let a
third process lock a fresh inode while a second still holds the old one). POSIX only; on network file
systems ``flock`` may be local to one machine.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from wgangp.errors import UserError

__all__ = ["LOCK_NAME", "RunLock"]

LOCK_NAME = ".lock"


class RunLock:
    """Hold ``run_dir/.lock`` exclusively for the life of a ``with`` block (or ``acquire``..``release``).

    A second locker, in this or any other process, gets a :class:`~wgangp.errors.UserError` naming the
    holder's pid and the directory.

    Example:
        >>> with RunLock(run_dir):
        ...     train(run_dir)
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            raise UserError(f"run directory {self.run_dir} is already locked by this RunLock")
        if not self.run_dir.is_dir():
            raise UserError(f"run directory {self.run_dir} does not exist")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by exec'd children
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder is not None else "another process"
            raise UserError(
                f"run directory {self.run_dir} is in use by {who} (lock {self.path}); wait for it to finish or stop it"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)  # a stale pid from a dead holder goes
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Unlock; the file stays, emptied, so a reader never names a process that no longer holds it."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """The pid in the lock file, or ``None`` while the holder has not written it yet."""
    text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
