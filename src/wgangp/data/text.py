"""Character sequences for the paper's language model (Sec. 5.5): read from local text, never downloaded.

What is read (``path``): one UTF-8 text file, several, or a folder (every ``*.txt`` under it, recursively,
in sorted order). With no path, the embedded default is the standard library's ``pydoc_data.topics``
(Python's help texts, ~465 kB of English), so ``dataset text`` works on a fresh machine.

Sequences of ``seq_len`` characters (official: 32), by ``mode``:

- ``"lines"`` (gan_language.py / language_helpers.py ``load_dataset``): one sequence per line, cut to
  ``seq_len`` characters and right-padded with :data:`PAD` (the official backtick). Lines empty after
  dropping trailing whitespace are skipped: an all-pad sequence is not text.
- ``"windows"``: each file cut into consecutive non-overlapping windows of ``seq_len`` characters
  (newlines kept as characters); a file's last partial window is dropped.

The :class:`Charmap` holds the characters seen, most frequent first (ties in code-point order), at most
``max_vocab`` (official: 2048) including :data:`UNKNOWN` at index 0, which stands for every rarer
character. It is built from the data, serialises to a dict (saved in a run, so samples decode without the
data) and encodes to one-hot floats ``[N, V, T]``; generated ``[N, V, T]`` decode by argmax per position.

The split is deterministic: a permutation of the sequences seeded by ``seed`` (NumPy ``SeedSequence``)
puts its first ``held_out`` (at most a fifth of them) in the held-out set, the rest in training.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from wgangp.data.sampler import ArraySampler
from wgangp.errors import UserError

__all__ = [
    "MIN_SEQ_LEN",
    "PAD",
    "UNKNOWN",
    "Charmap",
    "TextData",
    "TextSampler",
    "as_line",
    "embedded_text",
    "held_out_split",
    "load_text",
    "read_texts",
    "text_sequences",
]

PAD = "`"  # the official pad character (language_helpers.py)
UNKNOWN = "\ufffd"  # stands for the characters beyond max_vocab (the official 'unk')
MIN_SEQ_LEN = 4  # the metric's longest n-gram
TextMode = Literal["lines", "windows"]


# -- Reading ---------------------------------------------------------------------------------------------


def embedded_text() -> str:
    """The embedded default: every entry of ``pydoc_data.topics`` in sorted key order, joined by newlines."""
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))


def _text_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise UserError(f"text: no .txt files under {path}")
        return files
    if path.is_file():
        return [path]
    raise UserError(f"text: data_path {path} does not exist")


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"text: cannot read {path}: {err.strerror or err}") from None
    if b"\0" in raw:
        raise UserError(f"text: {path} is binary (it holds NUL bytes), not a text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"text: {path} is not UTF-8 (byte {err.start}: {raw[err.start : err.start + 1]!r}); convert it first"
        ) from None
    if not text.strip():
        raise UserError(f"text: {path} is empty")
    return text.removeprefix("\ufeff")  # a UTF-8 byte-order mark is no character of the text


def read_texts(path: str | Path | Sequence[str | Path] = "") -> list[tuple[str, str]]:
    """``(name, text)`` of each source: the embedded default (``path=""``), a file, files or a folder's ``*.txt``."""
    if isinstance(path, (str, Path)):
        if not str(path):
            return [("pydoc_data.topics", embedded_text())]
        paths = [Path(path)]
    else:
        paths = [Path(p) for p in path]
        if not paths:
            raise UserError("text: no files given")
    return [(str(f), _decode(f)) for p in paths for f in _text_files(p)]


def text_sequences(texts: Iterable[str], seq_len: int = 32, *, mode: TextMode = "lines") -> list[str]:
    """Sequences of exactly ``seq_len`` characters from ``texts`` (see the module docstring for ``mode``).

    >>> text_sequences(["ab\\n\\nabcdefg\\n"], 4)
    ['ab``', 'abcd']
    >>> text_sequences(["abcdefghij"], 4, mode="windows")
    ['abcd', 'efgh']
    """
    _check_seq_len(seq_len)
    out: list[str] = []
    for text in texts:
        if mode == "lines":
            for line in text.splitlines():
                line = line.rstrip()
                if line:
                    out.append(line[:seq_len].ljust(seq_len, PAD))
        elif mode == "windows":
            out += [text[i : i + seq_len] for i in range(0, len(text) - seq_len + 1, seq_len)]
        else:
            raise UserError(f"text: mode must be lines or windows; got {mode!r}")
    return out


LINE_BREAK = "\u21b5"  # ↵ stands for a line break inside a sequence when it is shown as one line
_BREAKS = {ord(c): LINE_BREAK for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}  # str.splitlines'


def as_line(sequence: str) -> str:
    """``sequence`` as one line of a file: each line-break character (``str.splitlines``') shown as ↵.

    >>> as_line("ab\\ncd")
    'ab↵cd'
    """
    return sequence.translate(_BREAKS)


def _check_seq_len(seq_len: int) -> None:
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < MIN_SEQ_LEN:
        raise UserError(
            f"text: seq_len must be an int ≥ {MIN_SEQ_LEN} (the metric's 4-grams); got {seq_len!r}"
        )


# -- Charmap ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Charmap:
    """Index ↔ character; ``chars[0]`` is :data:`UNKNOWN`, which every character not in ``chars`` maps to.

    >>> cm = Charmap.build(["abca"])
    >>> cm.chars, cm.decode(cm.encode(["cab?"]))
    (('\ufffd', 'a', 'b', 'c'), ['cab\ufffd'])
    """

    chars: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.chars or self.chars[0] != UNKNOWN:
            raise ValueError("a charmap starts with the unknown character")
        if any(len(c) != 1 for c in self.chars) or len(set(self.chars)) != len(self.chars):
            raise ValueError("a charmap holds distinct single characters")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def build(cls, sequences: Iterable[str], *, max_vocab: int = 2048) -> Charmap:
        """The characters of ``sequences``, most frequent first (ties by code point), ``max_vocab`` at most."""
        if max_vocab < 2:
            raise UserError(f"text: max_vocab must be ≥ 2 (unknown + one character); got {max_vocab}")
        counts: Counter[str] = Counter()
        for s in sequences:
            counts.update(s)
        counts.pop(UNKNOWN, None)
        ranked = sorted(counts, key=lambda c: (-counts[c], c))
        return cls((UNKNOWN, *ranked[: max_vocab - 1]))

    def __len__(self) -> int:
        return len(self.chars)

    def indices(self, sequences: Sequence[str]) -> Tensor:
        """Equal-length strings to ``int64 [N, T]`` indices (unknown characters to 0)."""
        index = self._index
        lengths = {len(s) for s in sequences}
        if len(lengths) > 1:
            raise ValueError(f"sequences must have one length; got lengths {sorted(lengths)}")
        rows = [[index.get(c, 0) for c in s] for s in sequences]
        return torch.tensor(rows, dtype=torch.int64).reshape(len(sequences), lengths.pop() if lengths else 0)

    def one_hot(self, indices: Tensor) -> Tensor:
        """``int [N, T]`` indices to float32 one-hot ``[N, V, T]``."""
        return F.one_hot(indices.long(), len(self)).transpose(1, 2).to(torch.float32)

    def encode(self, sequences: Sequence[str]) -> Tensor:
        """Equal-length strings to float32 one-hot ``[N, V, T]``."""
        return self.one_hot(self.indices(sequences))

    def decode(self, x: Tensor, *, strip_pad: bool = False) -> list[str]:
        """``[N, V, T]`` scores or probabilities to strings, by argmax over ``V`` at each position.

        ``strip_pad``: drop trailing :data:`PAD` characters (for display; the metric keeps them).
        """
        if x.ndim != 3 or x.shape[1] != len(self):
            raise ValueError(f"decode expects [N, {len(self)}, T]; got {tuple(x.shape)}")
        chars = self.chars
        out = ["".join(chars[i] for i in row) for row in x.detach().argmax(dim=1).cpu().tolist()]
        return [s.rstrip(PAD) for s in out] if strip_pad else out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "charmap", "chars": "".join(self.chars)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Charmap:
        if state.get("kind") != "charmap" or not isinstance(state.get("chars"), str):
            raise ValueError("not a saved charmap (expected {'kind': 'charmap', 'chars': str})")
        return cls(tuple(state["chars"]))


# -- The dataset -----------------------------------------------------------------------------------------


def held_out_split(n: int, held_out: int, seed: int) -> tuple[Tensor, Tensor]:
    """``(train, held)`` index tensors: a ``seed``-fixed permutation of ``range(n)``, its first ``k`` held out.

    ``k = min(held_out, n // 5)``: a small dataset keeps four fifths for training.
    """
    if held_out < 0:
        raise UserError(f"held_out must be ≥ 0; got {held_out}")
    k = min(held_out, n // 5)
    state = np.random.SeedSequence([seed, n]).generate_state(1, dtype=np.uint32)
    order = torch.from_numpy(np.random.default_rng(int(state[0])).permutation(n))
    return order[k:], order[:k]


@dataclass(frozen=True)
class TextData:
    """Encoded sequences: ``train`` and ``held_out`` as int16 indices ``[N, T]``, and their charmap."""

    train: Tensor
    held_out: Tensor
    charmap: Charmap
    source: str  # what was read, for messages

    @property
    def shape(self) -> tuple[int, int]:
        """One sample's shape ``(V, T)`` (what the models are built for)."""
        return len(self.charmap), int(self.train.shape[1])

    def strings(self, split: Literal["train", "held_out"] = "train") -> list[str]:
        """The sequences of ``split`` as strings (unknown characters as :data:`UNKNOWN`)."""
        rows = (self.train if split == "train" else self.held_out).tolist()
        return ["".join(self.charmap.chars[i] for i in row) for row in rows]


def load_text(
    path: str | Path | Sequence[str | Path] = "",
    *,
    seq_len: int = 32,
    mode: TextMode = "lines",
    max_vocab: int = 2048,
    held_out: int = 640,
    seed: int = 0,
    charmap: Charmap | None = None,
) -> TextData:
    """Read, cut, build (or reuse) the charmap, encode and split; see the module docstring.

    Args:
        path: a text file, files, a folder of ``.txt`` files, or ``""`` for the embedded default.
        seq_len: characters per sequence (official: 32; at least 4).
        mode: ``"lines"`` (official) or ``"windows"``.
        max_vocab: charmap size cap including the unknown character (official: 2048).
        held_out: sequences held out (official: 640, i.e. 10 batches of 64), at most a fifth of them.
        seed: seeds the split.
        charmap: a saved run's charmap, so the encoding matches the trained models; built from the data if None.

    Returns: :class:`TextData` with int16 ``[N, T]`` index tensors.
    """
    _check_seq_len(seq_len)
    sources = read_texts(path)
    sequences = text_sequences((text for _, text in sources), seq_len, mode=mode)
    names = sources[0][0] if len(sources) == 1 else f"{len(sources)} files"
    if not sequences:
        raise UserError(f"text: {names} holds no {mode} of {seq_len} characters")
    charmap = charmap if charmap is not None else Charmap.build(sequences, max_vocab=max_vocab)
    indices = charmap.indices(sequences).to(torch.int16)  # V ≤ 2048 fits; one-hot is made per batch
    train, held = held_out_split(len(sequences), held_out, seed)
    return TextData(indices[train], indices[held], charmap, names)


class TextSampler(ArraySampler):
    """Batches of one-hot sequences ``[batch_size, V, T]``: :class:`ArraySampler` over the index tensor.

    Order, resumable state (``state_dict``: ``kind "array"``), sharding (``keep``) and ``reference`` are
    ArraySampler's; only the conversion differs: indices are one-hot encoded per batch (the one-hot set
    of the embedded text would take ~200 MB as floats). ``load`` returns the training indices.

    >>> s = TextSampler(lambda: load_text(seq_len=8, held_out=0), 4)
    >>> s().shape[0], s().shape[2]
    (4, 8)
    """

    def __init__(
        self,
        load: Callable[[], TextData],
        batch_size: int,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        keep: slice | None = None,
    ) -> None:
        self._load_text = load
        self._text: TextData | None = None
        super().__init__(
            lambda: self.text.train, batch_size, seed=seed, device=device, images=False, keep=keep
        )

    @property
    def text(self) -> TextData:
        """The loaded data (charmap, held-out split), read on first use."""
        if self._text is None:
            text = self._load_text()
            n, t = text.train.shape
            if n < self.batch_size:
                raise UserError(
                    f"text: {text.source} gives {n} training sequences of {t} characters, fewer than one "
                    f"batch ({self.batch_size}); use more text, a smaller batch_size or seq_len"
                )
            self._text = text
        return self._text

    @property
    def charmap(self) -> Charmap:
        return self.text.charmap

    def _to_float(
        self, raw: Tensor, *, augment: bool, device: torch.device | None = None, total: int | None = None
    ) -> Tensor:
        device = self.device if device is None else device
        return self.text.charmap.one_hot(raw.to(device))  # [n, V, T]
