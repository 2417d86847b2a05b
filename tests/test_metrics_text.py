"""The n-gram Jensen–Shannon divergence (the paper's language-model metric) against closed forms."""

from __future__ import annotations

import math
import random

import pytest

from wgangp.metrics.text import ngram_counts, ngram_js, ngram_js_floor, text_metrics


def _random_strings(seed, count, length=12, alphabet="abcde"):
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(length)) for _ in range(count)]


def test_counts():
    assert ngram_counts(["abab", "b"], 2) == {"ab": 2, "ba": 1}
    assert ngram_counts(["abc"], 4) == {}
    with pytest.raises(TypeError):
        ngram_counts("abc", 1)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_identical_sets_are_zero(n):
    xs = _random_strings(0, 50)
    assert ngram_js(xs, xs, n) == 0.0
    assert ngram_js(xs, xs[::-1] + xs, n) == pytest.approx(0.0, abs=1e-15)  # same distribution


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_disjoint_alphabets_are_one_bit(n):
    assert ngram_js(_random_strings(1, 20, alphabet="ab"), _random_strings(2, 30, alphabet="xyz"), n) == (
        pytest.approx(1.0, abs=1e-12)
    )


def test_hand_computed_case():
    # Unigrams: P = (a ¾, b ¼), Q = (a ¼, b ¾); M = (½, ½).
    # JS = ½[¾log2(3/2) + ¼log2(1/2)] + ½[¼log2(1/2) + ¾log2(3/2)] = ¾log2 3 − 1.
    expected = 0.75 * math.log2(3) - 1
    assert ngram_js(["aaab"], ["abbb"], 1) == pytest.approx(expected, rel=1e-12, abs=0)
    # Bigrams of "aab" {aa, ab} vs "abb" {ab, bb}: P = (½, ½, 0), Q = (0, ½, ½), M = (¼, ½, ¼).
    # JS = ½[½·log2 2 + ½·log2 1]·2 = ½.
    assert ngram_js(["aab"], ["abb"], 2) == pytest.approx(0.5, rel=1e-12, abs=0)


def test_symmetric_and_bounded():
    for seed in range(5):
        a = _random_strings(seed, 10, alphabet="abcd")
        b = _random_strings(seed + 100, 15, alphabet="bcdef")
        for n in (1, 2, 3, 4):
            ab, ba = ngram_js(a, b, n), ngram_js(b, a, n)
            assert ab == pytest.approx(ba, rel=1e-12, abs=1e-15)
            assert 0.0 < ab < 1.0


def test_text_metrics_keys_and_orders():
    a, b = _random_strings(3, 20), _random_strings(4, 20)
    stats = text_metrics(a, b)
    assert list(stats) == ["js1", "js2", "js3", "js4"]
    assert stats["js1"] < stats["js2"] < stats["js3"] < stats["js4"]  # sparser n-grams, larger sample JS
    assert text_metrics(a, b, orders=(2,)) == {"js2": stats["js2"]}


def test_no_ngrams_is_an_error():
    with pytest.raises(ValueError, match="reference hold no 4-gram"):
        ngram_js(["abcd"], ["abc"], 4)


def test_floor_is_disjoint_seeded_and_shrinks_with_size():
    real = _random_strings(5, 2000)
    small = ngram_js_floor(real, 50, seed=1)
    assert ngram_js_floor(real, 50, seed=1) == small
    assert ngram_js_floor(real, 50, seed=2) != small
    large = ngram_js_floor(real, 640, seed=1)
    assert all(0 < large[k] < small[k] for k in small)
    # Disjoint: the two halves of a set of distinct strings share no string; with a unique marker
    # character per string the unigram JS is then exactly that of disjoint markers plus shared letters.
    marked = [chr(0x4E00 + i) + "a" for i in range(20)]
    assert ngram_js_floor(marked, 10, seed=0, orders=(1,))["js1"] == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(ValueError, match="need 21"):
        ngram_js_floor(marked, 10, reference_size=11)
