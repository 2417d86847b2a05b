"""Checkpoint files: atomic writes, a full disk, crafted pickles, every RNG state, and the run's checkpoint dir."""

from __future__ import annotations

import errno
import os
import pickle
import random
import warnings

import numpy as np
import pytest
import torch

from wgangp.errors import UserError
from wgangp.run.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointDir,
    CheckpointWarning,
    capture_global_rng,
    load_checkpoint,
    restore_global_rng,
    save_checkpoint,
)


def _state(step: int) -> dict:
    return {"format_version": CHECKPOINT_FORMAT, "step": step, "weights": torch.full((3,), float(step))}


def test_round_trip(tmp_path):
    path = save_checkpoint(_state(7), tmp_path / "a" / "c.pt")
    state = load_checkpoint(path, expected_format=CHECKPOINT_FORMAT)
    assert state["step"] == 7 and torch.equal(state["weights"], torch.full((3,), 7.0))
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.pt"]  # no temp file left


def test_global_rng_round_trip(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in NumPy's legacy state
    path = save_checkpoint(
        {"format_version": CHECKPOINT_FORMAT, "rng": capture_global_rng()}, tmp_path / "r.pt"
    )
    expected = (random.random(), np.random.randn(3), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_global_rng(load_checkpoint(path)["rng"])
    got = (random.random(), np.random.randn(3), torch.rand(3))
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])
    assert torch.equal(got[2], expected[2])


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    store = CheckpointDir(tmp_path, keep=3)
    first = store.save(_state(1))
    before = first.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(UserError) as info:
        store.save(_state(2))
    message = str(info.value)
    assert "No space left on device" in message and "step_0000001.pt is intact" in message
    assert "\n" not in message
    assert first.read_bytes() == before
    assert [p.name for p in store.dir.iterdir()] == ["step_0000001.pt"]  # the temp file is gone
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 1


def _payload_class(marker):
    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    return Payload


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_crafted_pickle_is_rejected_and_runs_nothing(tmp_path, writer):
    marker = tmp_path / "pwned"
    payload = {"format_version": CHECKPOINT_FORMAT, "step": 0, "x": _payload_class(marker)()}
    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        torch.save(payload, f) if writer == "torch.save" else pickle.dump(payload, f, protocol=2)
    with pytest.raises(UserError, match="cannot load checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
    # The payload is real: an unrestricted load would have created the file.
    if writer == "torch.save":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


def test_keeps_the_last_k_and_links_checkpoint_pt(tmp_path):
    store = CheckpointDir(tmp_path, keep=2)
    for step in (2, 4, 6, 8):
        store.save(_state(step))
    assert [step for step, _ in store.step_files()] == [6, 8]
    latest = tmp_path / "checkpoint.pt"
    assert load_checkpoint(latest)["step"] == 8
    assert os.path.samefile(latest, store.dir / "step_0000008.pt")  # a link, not a second copy
    store.save_best(_state(5))
    assert load_checkpoint(store.dir / "best.pt")["step"] == 5


def test_latest_skips_a_truncated_newest_with_a_warning(tmp_path):
    store = CheckpointDir(tmp_path)
    for step in (3, 6):
        store.save(_state(step))
    newest = store.dir / "step_0000006.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(CheckpointWarning, match="step_0000006.pt"):
        path, state = store.latest()
    assert state["step"] == 3 and path.name == "step_0000003.pt"
    assert store.quarantine_after(3) == [store.dir / "step_0000006.pt.corrupt"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left to skip
        assert store.latest()[1]["step"] == 3


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        (b"", "cannot load checkpoint"),
        (b"not a checkpoint", "cannot load checkpoint"),
        ("other-format", "has checkpoint format 1, this wgangp reads format 2"),
        ("no-format", "is not a wgangp checkpoint"),
    ],
)
def test_no_valid_checkpoint_is_one_error(tmp_path, contents, message):
    path = tmp_path / "checkpoints" / "step_0000001.pt"
    path.parent.mkdir()
    if contents == "other-format":
        torch.save({"format_version": 1, "step": 1}, path)
    elif contents == "no-format":
        torch.save({"step": 1}, path)
    else:
        path.write_bytes(contents)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserError, match="no valid checkpoint") as info:
            CheckpointDir(tmp_path).latest()
    assert message in str(info.value)


def test_drop_best_after_and_remove_temp_files(tmp_path):
    store = CheckpointDir(tmp_path)
    store.save_best(_state(9))
    store.drop_best_after(9)
    assert (store.dir / "best.pt").is_file()
    store.drop_best_after(8)
    assert not (store.dir / "best.pt").exists()
    (store.dir / ".step_0000001.pt.abc.tmp").write_bytes(b"torn")
    store.remove_temp_files()
    assert list(store.dir.iterdir()) == []
