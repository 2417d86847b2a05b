"""1-D signals from .npy: shapes, standardisation and its inverse, the split, the sampler, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wgangp.data.sequences import ChannelStats, load_series, read_series, series_sampler
from wgangp.errors import UserError


@pytest.fixture
def series_file(tmp_path):
    rng = np.random.default_rng(0)
    x = np.stack([3.0 + 2.0 * rng.standard_normal((200, 16)), -1.0 + 0.5 * rng.standard_normal((200, 16))], 1)
    path = tmp_path / "series.npy"
    np.save(path, x.astype(np.float64))
    return path, x


def test_rank_two_becomes_one_channel(tmp_path):
    path = tmp_path / "flat.npy"
    np.save(path, np.arange(30, dtype=np.int32).reshape(3, 10))
    x = read_series(path)
    assert x.shape == (3, 1, 10) and x.dtype == torch.float32
    assert torch.equal(x[:, 0], torch.arange(30, dtype=torch.float32).reshape(3, 10))


def test_standardisation_uses_training_split_and_inverts(series_file):
    path, raw = series_file
    data = load_series(path, held_out=40, seed=1)
    assert data.train.shape == (160, 2, 16) and data.held_out.shape == (40, 2, 16)
    torch.testing.assert_close(data.train.mean(dim=(0, 2)), torch.zeros(2), rtol=0, atol=1e-5)
    torch.testing.assert_close(data.train.std(dim=(0, 2), correction=0), torch.ones(2), rtol=0, atol=1e-5)
    stats = data.stats
    assert stats is not None
    assert stats.mean[0] == pytest.approx(3.0, abs=0.1) and stats.std[1] == pytest.approx(0.5, abs=0.02)
    back = stats.destandardize(torch.cat([data.train, data.held_out]).double())
    expected = np.sort(raw.reshape(-1))
    np.testing.assert_allclose(np.sort(back.numpy().reshape(-1)), expected, rtol=0, atol=1e-5)
    saved = ChannelStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert saved == stats
    again = load_series(path, held_out=40, seed=1, stats=saved)
    assert torch.equal(again.train, data.train)
    plain = load_series(path, standardize=False, held_out=40, seed=1)
    assert plain.stats is None
    torch.testing.assert_close(stats.standardize(plain.train), data.train, rtol=0, atol=1e-6)


def test_constant_channel_keeps_unit_scale():
    stats = ChannelStats.fit(torch.full((4, 1, 5), 7.0))
    assert stats == ChannelStats((7.0,), (1.0,))
    with pytest.raises(ValueError, match=r"expects series \[N, 1, T\]"):
        stats.standardize(torch.zeros(2, 3, 5))


def test_sampler_batches_and_resumes(series_file):
    path, _ = series_file
    load = lambda: load_series(path, held_out=40)  # noqa: E731
    s = series_sampler(load, 32, seed=2)
    x = s()
    assert x.shape == (32, 2, 16) and x.dtype == torch.float32
    state = s.state_dict()
    nxt = s()
    t = series_sampler(load, 32, seed=2)
    t.load_state_dict(state)
    assert torch.equal(t(), nxt)


def _save(tmp_path, name, array, **kwargs):
    path = tmp_path / name
    np.save(path, array, **kwargs)
    return path


def test_bad_inputs(tmp_path):
    nan = np.zeros((4, 8))
    nan[1, 2] = np.nan
    inf = np.zeros((4, 1, 8))
    inf[0, 0, 0] = np.inf
    cases = [
        (
            _save(tmp_path, "rank1.npy", np.zeros(8)),
            r"must hold \[N, C, T\] or \[N, T\] series; got shape \(8,\)",
        ),
        (_save(tmp_path, "rank4.npy", np.zeros((2, 1, 3, 4))), r"got shape \(2, 1, 3, 4\)"),
        (_save(tmp_path, "nan.npy", nan), r"1 non-finite value"),
        (_save(tmp_path, "inf.npy", inf), r"1 non-finite value"),
        (
            _save(tmp_path, "object.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True),
            "Python objects",
        ),
        (_save(tmp_path, "complex.npy", np.zeros((2, 3), dtype=complex)), "must hold real numbers"),
        (_save(tmp_path, "bool.npy", np.zeros((2, 3), dtype=bool)), "must hold real numbers"),
        (tmp_path / "missing.npy", "file not found"),
        (tmp_path / "series.csv", "must be a .npy file"),
        ("", "needs --data-path"),
    ]
    for path, message in cases:
        with pytest.raises(UserError, match=message) as info:
            load_series(path)
        assert "\n" not in str(info.value)
    few = _save(tmp_path, "few.npy", np.zeros((20, 8)))
    with pytest.raises(UserError, match=r"gives 16 training series, fewer than one batch \(64\)"):
        series_sampler(lambda: load_series(few), 64).load()
