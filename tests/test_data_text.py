"""Text data: reading, cutting, the charmap, one-hot encoding, the split, the sampler and bad inputs."""

from __future__ import annotations

import json

import pytest
import torch

from wgangp.data.text import (
    PAD,
    UNKNOWN,
    Charmap,
    TextSampler,
    embedded_text,
    held_out_split,
    load_text,
    read_texts,
    text_sequences,
)
from wgangp.errors import UserError


def test_lines_cut_and_pad_like_the_official_code():
    text = "hello world\n\n  \nabcdefghijklmnop  \r\nxy\n"
    assert text_sequences([text], 8) == ["hello wo", "abcdefgh", "xy" + PAD * 6]


def test_windows_are_consecutive_and_drop_the_tail():
    text = "0123456789abcdef\nZ"
    assert text_sequences([text], 5, mode="windows") == ["01234", "56789", "abcde"]
    assert text_sequences([text, "xyzuv"], 6, mode="windows") == ["012345", "6789ab", "cdef\nZ"]
    assert text_sequences(["abcd", "efgh"], 4, mode="windows") == ["abcd", "efgh"]  # never across files


def test_charmap_ranks_caps_and_round_trips():
    cm = Charmap.build(["aaabbc", "ddd"], max_vocab=3)
    assert cm.chars == (UNKNOWN, "a", "d")  # a and d tie at 3; code point order; b, c beyond the cap
    x = cm.encode(["abcd"])  # [1, 3, 4]
    assert x.shape == (1, 3, 4) and x.dtype == torch.float32
    assert torch.equal(x.sum(dim=1), torch.ones(1, 4))
    assert cm.decode(x) == ["a" + UNKNOWN * 2 + "d"]
    saved = json.loads(json.dumps(cm.to_dict()))
    assert Charmap.from_dict(saved) == cm
    with pytest.raises(ValueError, match="not a saved charmap"):
        Charmap.from_dict({"kind": "stats"})


def test_decode_is_argmax_per_position_and_strips_pad():
    cm = Charmap.build(["ab" + PAD])
    probs = torch.zeros(2, len(cm), 3)
    idx = [[cm.chars.index(c) for c in s] for s in ("ba" + PAD, PAD + "ab")]
    for n, row in enumerate(idx):
        for t, i in enumerate(row):
            probs[n, i, t] = 0.6
    probs += 0.1 * torch.rand(probs.shape)  # smaller than the 0.6 lead everywhere
    assert cm.decode(probs) == ["ba" + PAD, PAD + "ab"]
    assert cm.decode(probs, strip_pad=True) == ["ba", PAD + "ab"]
    with pytest.raises(ValueError, match="decode expects"):
        cm.decode(torch.zeros(1, len(cm) + 1, 3))


def test_files_folders_and_encoding(tmp_path):
    (tmp_path / "a.txt").write_text("first line here\nsecond\n", encoding="utf-8")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.txt").write_text("\ufeffthird – ünïcode\n", encoding="utf-8")
    (sub / "ignored.md").write_text("not read\n")
    names = [name for name, _ in read_texts(tmp_path)]
    assert names == [str(tmp_path / "a.txt"), str(sub / "b.txt")]
    data = load_text([tmp_path / "a.txt", sub / "b.txt"], seq_len=6, held_out=0)
    assert data.shape == (len(data.charmap), 6)
    assert sorted(data.strings()) == sorted(["first ", "second", "third "])
    assert data.train.dtype == torch.int16


def test_split_is_deterministic_disjoint_and_capped():
    train, held = held_out_split(100, 640, seed=3)
    assert len(held) == 20 and len(train) == 80  # at most a fifth
    assert sorted(torch.cat([train, held]).tolist()) == list(range(100))
    assert torch.equal(held_out_split(100, 640, seed=3)[1], held)
    assert not torch.equal(held_out_split(100, 640, seed=4)[1], held)
    assert len(held_out_split(10_000, 640, seed=0)[1]) == 640


def test_embedded_default_and_saved_charmap():
    data = load_text()
    assert data.source == "pydoc_data.topics" and len(embedded_text()) > 400_000
    assert data.held_out.shape == (640, 32) and data.train.shape[0] > 5000
    assert 60 < len(data.charmap) <= 2048
    lines = text_sequences([embedded_text()], 32)
    assert sorted(data.strings() + data.strings("held_out")) == sorted(lines)  # a split of every line
    again = load_text(charmap=Charmap(data.charmap.chars[:30]))
    assert len(again.charmap) == 30 and int(again.train.max()) < 30


def test_sampler_is_arraysampler_with_one_hot_batches():
    load = lambda: load_text(seq_len=8, held_out=64)  # noqa: E731
    s = TextSampler(load, 16, seed=5)
    x = s()
    v = len(s.charmap)
    assert x.shape == (16, v, 8) and x.dtype == torch.float32
    assert torch.equal(x.sum(dim=1), torch.ones(16, 8))
    state = s.state_dict()
    nxt = s()
    t = TextSampler(load, 16, seed=5)
    t.load_state_dict(state)
    assert torch.equal(t(), nxt)  # resumes exactly
    halves = [TextSampler(load, 16, seed=5, keep=slice(a, b))() for a, b in ((0, 8), (8, 16))]
    assert torch.equal(torch.cat(halves), x)  # sharding splits the same batch by rows
    ref = s.reference(10, seed=1)
    assert torch.equal(ref, s.reference(10, seed=1)) and ref.shape == (10, v, 8)
    assert s.sample(40).shape == (40, v, 8)


def test_bad_inputs(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"PK\x03\x04\x00\x00abc")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    short = tmp_path / "short.txt"
    short.write_text("one line\nanother\n")
    cases = [
        (lambda: load_text(empty), "is empty"),
        (lambda: load_text(binary), "is binary"),
        (lambda: load_text(latin), "is not UTF-8"),
        (lambda: load_text(tmp_path / "missing.txt"), "does not exist"),
        (lambda: load_text(short, seq_len=3), "seq_len must be an int ≥ 4"),
        (lambda: load_text(short, seq_len=64, mode="windows"), "holds no windows of 64"),
        (
            lambda: TextSampler(lambda: load_text(short), 64).load(),
            r"gives 2 training sequences .* fewer than one batch \(64\)",
        ),
    ]
    for call, message in cases:
        with pytest.raises(UserError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
    folder = tmp_path / "nofiles"
    folder.mkdir()
    with pytest.raises(UserError, match=r"no \.txt files under"):
        load_text(folder)
