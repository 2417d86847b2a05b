"""Tests for ``wgangp.run.lock``: one holder at a time, across processes, and locks of dead processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wgangp.errors import UserError
from wgangp.run.lock import LOCK_NAME, RunLock

SRC = str(Path(__file__).resolve().parents[1] / "src")


def holder_process(run_dir: Path, mode: str) -> subprocess.Popen[str]:
    """A Python process that takes the lock and prints ``locked``; ``mode="exit"`` leaves without releasing."""
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from wgangp.run.lock import RunLock
        lock = RunLock({str(run_dir)!r}).acquire()
        print("locked", flush=True)
        if {mode!r} == "exit":
            os._exit(0)
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def try_lock_in_another_process(run_dir: Path) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        from wgangp.errors import UserError
        from wgangp.run.lock import RunLock
        try:
            with RunLock({str(run_dir)!r}):
                print("acquired")
        except UserError as error:
            print(error)
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_lock_writes_the_pid_and_release_lets_the_next_locker_in(tmp_path: Path) -> None:
    with RunLock(tmp_path) as lock:
        assert lock.held
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert not lock.held
    assert (tmp_path / LOCK_NAME).read_text() == ""
    with RunLock(tmp_path):
        pass


def test_second_locker_in_the_same_process_gets_one_line_naming_pid_and_directory(tmp_path: Path) -> None:
    with RunLock(tmp_path), pytest.raises(UserError) as caught:
        RunLock(tmp_path).acquire()

    message = str(caught.value)
    assert f"process {os.getpid()}" in message
    assert str(tmp_path) in message
    assert "\n" not in message


def test_a_second_process_is_refused_while_the_first_holds_it(tmp_path: Path) -> None:
    holder = holder_process(tmp_path, "sleep")
    try:
        result = try_lock_in_another_process(tmp_path)
        with pytest.raises(UserError, match=f"in use by process {holder.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()

    assert (
        result.stdout.strip()
        == f"run directory {tmp_path} is in use by process {holder.pid} (lock "
        + str(tmp_path / LOCK_NAME)
        + "); wait for it to finish or stop it"
    )


@pytest.mark.parametrize("how", ["sigkill", "exit-without-release"])
def test_lock_of_a_dead_process_is_reacquired(tmp_path: Path, how: str) -> None:
    holder = holder_process(tmp_path, "sleep" if how == "sigkill" else "exit")
    if how == "sigkill":
        os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert (tmp_path / LOCK_NAME).read_text().strip() == str(holder.pid)  # the stale pid is still there

    with RunLock(tmp_path):  # non-blocking: it would raise if the dead process still held it
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert try_lock_in_another_process(tmp_path).stdout.strip() == "acquired"


def test_missing_directory_and_double_acquire_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        RunLock(tmp_path / "absent").acquire()
    lock = RunLock(tmp_path).acquire()
    try:
        with pytest.raises(UserError, match="already locked"):
            lock.acquire()
    finally:
        lock.release()
    lock.release()  # releasing twice is harmless
