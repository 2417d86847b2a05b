"""Resume: a run stopped and continued is bit-identical on CPU to one never stopped, parameters and logs."""

from __future__ import annotations

import json

import pytest
import torch

from wgangp.cli import main
from wgangp.config import resolve_config
from wgangp.run.checkpoint import CheckpointDir, load_checkpoint
from wgangp.run.loop import load_run, train
from wgangp.run.resume import find_resume_point, rewind_metrics
from wgangp.trainer import Trainer

SMALL = {
    "width": 16,
    "depth": 2,
    "batch_size": 32,
    "eval_samples": 64,
    "log_every": 3,
    "eval_every": 4,
    "plot_every": 10**6,
    "checkpoint_every": 4,
    "keep_checkpoints": 2,
    # A linear LR decay is stretched to a new step count, so extensions compare only under a constant LR.
    "lr_decay": "none",
}
TINY = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={value}")]
QUIET = ["--no-progress", "--no-tensorboard"]


class Crash(Exception):
    """Stands in for a process killed between checkpoints."""


def _rows(run_dir):
    """metrics.jsonl without wall-clock times."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def _assert_same_state(a: Trainer, b: Trainer) -> None:
    assert a.step == b.step
    pairs = [(a.generator, b.generator), (a.critic, b.critic)]
    if a.generator_ema is not None:
        pairs.append((a.generator_ema, b.generator_ema))
    for x, y in pairs:
        for (name, p), q in zip(x.state_dict().items(), y.state_dict().values(), strict=True):
            assert torch.equal(p, q), name
    for x, y in ((a.critic_opt, b.critic_opt), (a.generator_opt, b.generator_opt)):
        for s, t in zip(x.state_dict()["state"].values(), y.state_dict()["state"].values(), strict=True):
            assert all(torch.equal(s[k], t[k]) for k in s)


@pytest.mark.parametrize(
    "extra",
    [{"dataset": "8gaussians", "ema_decay": 0.9}, {"dataset": "swissroll", "lr_decay": "linear"}],
    ids=["8gaussians-ema", "swissroll-lr-decay"],
)
def test_resume_after_a_crash_is_bit_identical(tmp_path, monkeypatch, extra):
    config = resolve_config("fast", overrides=SMALL | extra | {"steps": 12})
    straight = train(config, tmp_path / "straight", progress=False, tensorboard=False).run_dir

    # Crash at step 10: the last checkpoint is step 8, and rows for steps 9 (log) and 10 were written
    # after it; step 8 is no multiple of log_every, so the log window must resume mid-way.
    original = Trainer.train_iteration

    def crash_at_10(self):
        stats = original(self)
        if self.step == 10:
            raise Crash
        return stats

    monkeypatch.setattr(Trainer, "train_iteration", crash_at_10)
    with pytest.raises(Crash):
        train(config, tmp_path / "resumed", progress=False, tensorboard=False)
    monkeypatch.setattr(Trainer, "train_iteration", original)
    assert max(row["step"] for row in _rows(tmp_path / "resumed")) == 9

    point = find_resume_point(tmp_path / "resumed")
    assert point.step == 8
    resumed = train(config, tmp_path / "resumed", resume=point, progress=False, tensorboard=False).run_dir

    assert _rows(resumed) == _rows(straight)  # no duplicated or missing steps, same values
    _assert_same_state(load_run(straight), load_run(resumed))
    best = [load_checkpoint(d / "checkpoints" / "best.pt") for d in (straight, resumed)]
    assert best[0]["step"] == best[1]["step"]
    assert [s for s, _ in CheckpointDir(resumed).step_files()] == [8, 12]  # keep_checkpoints=2


def test_extending_a_finished_run_matches_a_longer_one(tmp_path, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    # 8 is a multiple of log_every and eval_every, so the short run's final rows are regular ones.
    tiny = [*TINY, "--set", "log_every=2"]
    assert main(["train", "--out", str(straight), "--steps", "16", *tiny, *QUIET]) == 0
    assert main(["train", "--out", str(resumed), "--steps", "8", *tiny, *QUIET]) == 0
    # --resume alone reuses the saved config (width 16 ...); --steps is a run-control change.
    assert main(["train", "--resume", str(resumed), "--steps", "16", *QUIET]) == 0
    assert "warning" not in capsys.readouterr().err
    _assert_same_state(load_run(straight), load_run(resumed))
    assert _rows(resumed) == _rows(straight)
    assert json.loads((resumed / "config.json").read_text())["steps"] == 16


def test_truncated_newest_checkpoint_is_skipped_with_a_warning(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--steps", "8", *TINY, *QUIET]) == 0
    newest = run / "checkpoints" / "step_0000008.pt"
    newest.write_bytes(newest.read_bytes()[:500])
    capsys.readouterr()
    assert main(["train", "--resume", str(run), *QUIET]) == 0  # saved steps=8, the newest valid is 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning: skipping a newer checkpoint" in err and "step_0000008.pt" in err
    assert (run / "checkpoints" / "step_0000008.pt.corrupt").is_file()
    for _, path in CheckpointDir(run).step_files():
        assert load_checkpoint(path)["step"] in (4, 8)
    assert [r["step"] for r in _rows(run) if "wasserstein" in r] == [3, 6, 8]


def test_forced_resume_applies_the_new_learning_rate(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--steps", "4", *TINY, *QUIET]) == 0
    argv = ["train", "--resume", str(run), "--steps", "8", "--set", "lr_critic=5e-4", *QUIET]
    assert main(argv) == 2  # refused without --force
    assert main([*argv, "--force"]) == 0
    trainer = load_run(run)
    assert trainer.step == 8 and trainer.config.lr_critic == 5e-4
    assert trainer.critic_opt.param_groups[0]["lr"] == 5e-4


def test_a_run_from_before_a_config_field_existed_resumes(tmp_path):
    """A checkpoint whose config lacks a later field (here ``sync_batchnorm``) takes its default."""
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--steps", "4", *TINY, *QUIET]) == 0
    store = CheckpointDir(run)
    _, state = store.latest()
    del state["config"]["sync_batchnorm"]
    store.save(state)
    assert main(["train", "--resume", str(run), "--steps", "6", *QUIET]) == 0
    argv = ["train", "--resume", str(run), "--steps", "8", "--set", "sync_batchnorm=false", *QUIET]
    assert main(argv) == 2  # a real change from the default is still one


def test_rewind_metrics_drops_rows_after_the_checkpoint_and_a_torn_line(tmp_path):
    rows = [{"step": s, "x": s} for s in (1, 2, 2, 3, 4)]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 5, "x'
    (tmp_path / "metrics.jsonl").write_text(text)
    assert rewind_metrics(tmp_path, 2) == 3
    assert _rows(tmp_path) == rows[:3]
    assert rewind_metrics(tmp_path, 2) == 0
