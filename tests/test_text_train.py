"""Text end to end (Sec. 5.5): train, metrics and samples, the charmap saved in the run, resume, sample,
eval, compare, the step paths and torchrun; a slow run reproduces the README's CPU measurement."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from torchrun_util import assert_same_training, checkpoint_state, torchrun
from wgangp.cli import main
from wgangp.config import resolve_config
from wgangp.data import Charmap, TextSampler
from wgangp.data.text import PAD, load_text
from wgangp.evaluation import kind_for
from wgangp.metrics.text import text_metrics
from wgangp.run.checkpoint import CheckpointDir, load_checkpoint
from wgangp.run.log import read_metrics
from wgangp.trainer import Trainer

QUIET = ["--no-progress", "--no-tensorboard", "--device", "cpu"]
SMALL = {
    "width": 16,
    "depth": 1,
    "batch_size": 16,
    "n_critic": 2,
    "held_out": 40,
    "eval_samples": 40,
    "grid_samples": 8,
    "seq_len": 12,
    "log_every": 1,
    "eval_every": 2,
    "plot_every": 2,
    "checkpoint_every": 2,
    "keep_checkpoints": 10,
    # The preset decays its learning rate linearly over `steps`; the resume tests extend a split run's
    # --steps, which would change that schedule, so these small runs keep a constant rate.
    "lr_decay": "none",
}
WORDS = ["the", "cat", "sat", "on", "a", "mat", "while", "dogs", "ran", "far", "away", "from", "home"]


def small_sets(**extra: object) -> list[str]:
    return [arg for k, v in (SMALL | extra).items() for arg in ("--set", f"{k}={v}")]


@pytest.fixture(autouse=True)
def _one_process_here(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def corpus(tmp_path) -> Path:
    """400 lines of 2–6 words drawn from a small vocabulary."""
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, rng.integers(2, 7))) for _ in range(400)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def small_config(corpus: Path, **extra: object):
    values = SMALL | {"data_path": str(corpus), "device": "cpu"} | extra
    return resolve_config("text", sets=[f"{k}={v}" for k, v in values.items()])


def train(out: Path, corpus: Path, steps: int, *extra: str) -> int:
    args = [
        "train",
        "--dataset",
        "text",
        "--data-path",
        str(corpus),
        "--out",
        str(out),
        "--steps",
        str(steps),
    ]
    return main([*args, *small_sets(), *extra, *QUIET])


def test_text_run_logs_js_with_floor_and_writes_samples(tmp_path, corpus):
    out = tmp_path / "run"
    assert train(out, corpus, 4) == 0
    evals = [r for r in read_metrics(out) if "js1" in r]
    assert [r["step"] for r in evals] == [2, 4]
    # The floor is the held-out lines against the training lines, exactly.
    data = load_text(corpus, seq_len=12, held_out=40)
    floor = text_metrics(data.strings("held_out"), data.strings("train"))
    for row in evals:
        for n in (1, 2, 3, 4):
            assert 0.0 <= row[f"js{n}"] <= 1.0
            assert row[f"js{n}_floor"] == pytest.approx(floor[f"js{n}"], rel=1e-12, abs=1e-15)
    # Decoded sample text every plot_every, one sequence per line, characters of the charmap only.
    samples = sorted(p.name for p in (out / "samples").iterdir())
    assert samples == ["final.txt", "step_0000002.txt"]
    lines = (out / "samples" / "step_0000002.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8 and all(len(line) <= 12 for line in lines)
    assert set("".join(lines)) <= set(data.charmap.chars)
    # The charmap is in every checkpoint.
    state = load_checkpoint(out / "checkpoints" / "step_0000004.pt")
    assert Charmap.from_dict(state["data_codec"]) == data.charmap


def test_sample_decodes_without_the_data_and_eval_scores(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert train(out, corpus, 2) == 0
    trainer = Trainer(small_config(corpus))
    expected = trainer.codec
    corpus.unlink()  # the run alone must suffice to rebuild, sample and decode
    assert main(["sample", str(out), "-n", "100", "--out", str(tmp_path / "s.txt"), "--device", "cpu"]) == 0
    lines = (tmp_path / "s.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 100 and all(0 <= len(line) <= 12 and not line.endswith(PAD) for line in lines)
    assert isinstance(expected, Charmap) and set("".join(lines)) <= set(expected.chars)
    assert main(["sample", str(out), "-n", "5", "--out", str(tmp_path / "s.npy"), "--device", "cpu"]) == 0
    probs = np.load(tmp_path / "s.npy")
    assert probs.shape == (5, len(expected), 12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-5)


def test_eval_reports_js_of_the_saved_run(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert train(out, corpus, 2) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--samples", "30", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 30 and report["step"] == 2
    assert all(0.0 <= report[f"js{n}"] <= 1.0 for n in (1, 2, 3, 4)) and "js4_floor" in report


def test_resume_is_bit_exact_and_keeps_the_saved_charmap(tmp_path, corpus):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train(straight, corpus, 4) == 0
    assert train(split, corpus, 2) == 0
    assert main(["train", "--resume", str(split), "--steps", "4", *QUIET]) == 0
    a, b = (load_checkpoint(d / "checkpoints" / "step_0000004.pt") for d in (straight, split))
    for net in ("generator", "critic"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key}"
    assert a["data_codec"] == b["data_codec"]
    rows = lambda d: [r for r in read_metrics(d) if "js1" in r]  # noqa: E731
    assert rows(straight) == rows(split)
    # New characters in the data do not change a resumed run's encoding: they map to the unknown one.
    with corpus.open("a", encoding="utf-8") as f:
        f.write("zebra quokka\n" * 5)
    assert main(["train", "--resume", str(split), "--steps", "6", *QUIET]) == 0
    _, state = CheckpointDir(split).latest()
    assert state["step"] == 6 and state["data_codec"] == a["data_codec"]


@pytest.mark.parametrize(
    "extra", [{"precision": "bf16"}, {"penalty_every": 2}, {"loss": "gan"}, {"loss": "wgan-clip"}]
)
def test_text_trains_on_other_paths_and_losses(tmp_path, corpus, extra):
    trainer = Trainer(small_config(corpus, **extra))
    assert trainer.step_path == (
        "fast-eager" if "precision" in extra or "penalty_every" in extra else "eager"
    )
    for _ in range(2):
        stats = trainer.train_iteration()
    assert all(bool(torch.isfinite(v)) for v in stats.values())
    x = trainer.sample(4, seed=0)
    assert x.shape == (4, len(trainer.codec), 12)  # type: ignore[arg-type]


def test_text_kind_scores_decoded_samples_against_the_training_lines(corpus):
    config = small_config(corpus)
    trainer = Trainer(config)
    assert isinstance(trainer.data, TextSampler)
    kind = kind_for(config, trainer.data)
    decoded = trainer.data.charmap.decode(trainer.sample(40, seed=kind.seed))
    metrics = kind.evaluate(trainer)
    expected = text_metrics(decoded, trainer.data.text.strings("train"))
    assert {k: metrics[k] for k in expected} == expected


def test_two_processes_train_text_as_one(tmp_path, corpus):

    args = ["--dataset", "text", "--data-path", str(corpus), "--steps", "2", *small_sets(), *QUIET]
    torchrun(2, ["--out", str(tmp_path / "two"), *args])
    assert main(["train", "--out", str(tmp_path / "one"), *args]) == 0
    a, b = (checkpoint_state(tmp_path / d, 2) for d in ("two", "one"))
    assert a["data_codec"] == b["data_codec"]
    assert_same_training(a, b)


def test_compare_text_reports_js_floor_and_samples(tmp_path, capsys):
    out = tmp_path / "cmp"
    sets = small_sets(held_out=640, eval_samples=64, seq_len=32, batch_size=32)
    assert (
        main(["compare", "--dataset", "text", "--steps", "2", "--out", str(out), *sets, "--no-progress"]) == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert [m["key"] for m in results["metrics"]] == ["js1", "js2", "js3", "js4"]
    assert set(results["floor"]) == {"js1", "js2", "js3", "js4"}
    assert all(0 < v < 1 for v in results["floor"].values())
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "real vs real (floor)" in report and "JS4" in report
    assert (out / "samples.png").stat().st_size > 10_000  # three panels of text
    assert main(["sample", str(out / "runs" / "gan-seed0"), "-n", "3", "--out", str(tmp_path / "g.txt")]) == 0


# The preset's measured end (README "Sequences"): JS4 0.599-0.607 of an untrained 1.0 at Adam 6e-3 (0.652 at
# 2e-3); the bound leaves seed/torch noise.
MEASURED_JS4_SHARE = 0.66
SLOW = pytest.mark.skipif(os.environ.get("WGANGP_SLOW") != "1", reason="long run; WGANGP_SLOW=1 runs it")


@pytest.fixture(scope="module")
def preset_run(tmp_path_factory) -> tuple[list[dict], dict[str, float]]:
    """The `text` preset trained to its end (about 4 CPU-minutes), and what its untrained generator scores."""
    out = tmp_path_factory.mktemp("text-preset") / "run"
    assert main(["train", "--dataset", "text", "--out", str(out), *QUIET]) == 0
    untrained = Trainer(resolve_config("text", overrides={"device": "cpu"}))
    return [r for r in read_metrics(out) if "js4" in r], kind_for(untrained.config, untrained.data).evaluate(
        untrained
    )


@pytest.mark.slow
@SLOW
def test_text_preset_reaches_its_measured_level(preset_run):
    """The README's measurement of the preset: JS4 at most MEASURED_JS4_SHARE of the untrained generator's."""
    evals, first = preset_run
    assert 0.99 <= first["js4"] <= 1.0
    assert evals[-1]["js4_floor"] <= evals[-1]["js4"] <= MEASURED_JS4_SHARE * first["js4"]
    assert evals[-1]["js1"] <= 0.1 * first["js1"]


@pytest.mark.slow
@SLOW
@pytest.mark.xfail(strict=True, reason="issue 14's target, not met at our budget: see README 'Sequences'")
def test_text_preset_halves_js4_of_an_untrained_generator(preset_run):
    evals, first = preset_run
    assert evals[-1]["js4"] <= 0.5 * first["js4"]


def test_draw_writes_the_file_and_the_tensorboard_text(tmp_path, corpus):
    config = small_config(corpus)
    trainer = Trainer(config)
    written: list[tuple[str, str, int]] = []

    class Log:
        def write_image(self, tag, image, step):
            raise AssertionError("text has no picture")

        def write_text(self, tag, text, step):
            written.append((tag, text, step))

    path = kind_for(config, trainer.data).draw(trainer, tmp_path, "step_0000000", Log())
    assert path == tmp_path / "samples" / "step_0000000.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == config.grid_samples
    assert written == [("samples", "\n".join("    " + line for line in lines), 0)]
