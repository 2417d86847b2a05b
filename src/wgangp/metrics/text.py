"""Character n-gram Jensen–Shannon divergence: the paper's language-model metric (Sec. 5.5).

For a list of strings, ``P_n`` is the empirical distribution of its character n-grams (every window of ``n``
consecutive characters of every string, counted over the whole list). Between two lists:

``JS_n = ½ KL(P_n ‖ M) + ½ KL(Q_n ‖ M)`` with ``M = ½ (P_n + Q_n)``, in bits (log base 2), so ``0 ≤ JS_n ≤ 1``,
``JS_n = 0`` iff the distributions are equal and ``1`` iff their supports are disjoint.

This is ``NgramLanguageModel.js_with`` of igul222/improved_wgan_training (language_helpers.py), reported
there for n = 1..4 between 640 generated samples and the training lines. The reading of a value needs its
*floor*: the same JS between two disjoint sets of real strings of the same sizes (:func:`ngram_js_floor`),
since a finite sample of the data itself is not at 0. Strings are compared as given: pad characters, if
the decoded sequences have them, are characters like any other (as in the official code).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

__all__ = ["ORDERS", "ngram_counts", "ngram_js", "ngram_js_floor", "text_metrics"]

ORDERS: tuple[int, ...] = (1, 2, 3, 4)  # the official code's n-gram orders


def ngram_counts(strings: Sequence[str], n: int) -> Counter[str]:
    """Counts of every length-``n`` substring of every string (strings shorter than ``n`` contribute none).

    >>> ngram_counts(["abab"], 2)
    Counter({'ab': 2, 'ba': 1})
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(strings, str):
        raise TypeError("strings must be a sequence of strings, not one string")
    counts: Counter[str] = Counter()
    for s in strings:
        counts.update(s[i : i + n] for i in range(len(s) - n + 1))
    return counts


def _js_bits(p_counts: Counter[str], q_counts: Counter[str]) -> float:
    keys = list(p_counts.keys() | q_counts.keys())
    p = np.array([p_counts[k] for k in keys], dtype=np.float64)
    q = np.array([q_counts[k] for k in keys], dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        on = a > 0  # 0·log 0 = 0; where a > 0, m ≥ a/2 > 0
        return float(np.sum(a[on] * np.log2(a[on] / m[on])))

    # Rounding can leave a tiny negative or a hair above 1; the JS divergence in bits lies in [0, 1].
    return min(1.0, max(0.0, 0.5 * kl(p) + 0.5 * kl(q)))


def ngram_js(samples: Sequence[str], reference: Sequence[str], n: int) -> float:
    """``JS(P_n(samples) ‖ P_n(reference))`` in bits, in [0, 1] (see the module docstring).

    Args:
        samples: strings, e.g. decoded generator samples (640 in the paper).
        reference: real strings.
        n: the n-gram order.

    >>> ngram_js(["ab"], ["ab"], 1), ngram_js(["aa"], ["bb"], 1)
    (0.0, 1.0)
    """
    p, q = ngram_counts(samples, n), ngram_counts(reference, n)
    for what, counts in (("samples", p), ("reference", q)):
        if not counts:
            raise ValueError(f"{what} hold no {n}-gram (empty, or every string shorter than {n})")
    return _js_bits(p, q)


def text_metrics(
    samples: Sequence[str], reference: Sequence[str], *, orders: Sequence[int] = ORDERS
) -> dict[str, float]:
    """``{"js1": …, "js2": …, "js3": …, "js4": …}``: :func:`ngram_js` for each order in ``orders``."""
    return {f"js{n}": ngram_js(samples, reference, n) for n in orders}


def ngram_js_floor(
    real: Sequence[str],
    size: int = 640,
    *,
    reference_size: int | None = None,
    seed: int = 0,
    orders: Sequence[int] = ORDERS,
) -> dict[str, float]:
    """The metric's floor: :func:`text_metrics` between two disjoint random subsets of ``real``.

    The first subset has ``size`` strings (as many as the generated samples), the second
    ``reference_size`` (default ``size``; as many as the reference the samples are compared with). The
    subsets are drawn without replacement by a NumPy generator seeded with ``seed``.

    >>> ngram_js_floor(["ab", "ab", "ab", "ab"], 2, orders=(1,))
    {'js1': 0.0}
    """
    reference_size = size if reference_size is None else reference_size
    if isinstance(real, str):
        raise TypeError("real must be a sequence of strings, not one string")
    if size < 1 or reference_size < 1:
        raise ValueError(f"subset sizes must be ≥ 1; got {size} and {reference_size}")
    if size + reference_size > len(real):
        raise ValueError(
            f"two disjoint subsets of {size} and {reference_size} strings need {size + reference_size}; "
            f"got {len(real)}"
        )
    order = np.random.default_rng(seed).permutation(len(real))
    first = [real[i] for i in order[:size]]
    second = [real[i] for i in order[size : size + reference_size]]
    return text_metrics(first, second, orders=orders)
