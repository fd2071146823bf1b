"""Tests for memgym.trainer.checkpoint and memgym.trainer.logging: atomic checkpoint folders,
rotation, exact restore of weights/optimizer/scheduler/RNG (LoRA and full), resume-path
resolution, and the metrics file (torn lines, truncation on resume, the learning curve)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from memgym.errors import ConfigError
from memgym.trainer.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    resolve_resume,
    save_checkpoint,
)
from memgym.trainer.grpo import build_scheduler
from memgym.trainer.logging import MetricsLogger, read_metrics


def _model(lora: bool):
    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok, hidden_size=32, seed=1)
    if lora:
        peft = pytest.importorskip("peft")
        model = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules="all-linear"))
    return model, tok


def _opt(model):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    sched = build_scheduler(opt, kind="linear", warmup_steps=1, total_steps=10)
    return params, opt, sched


def _one_step(model, params, opt, sched):
    out = model(input_ids=torch.tensor([[5, 6, 7, 8]])).logits.float().pow(2).mean()
    out.backward()
    opt.step()
    sched.step()
    opt.zero_grad()


@pytest.mark.parametrize("lora", [True, False])
def test_save_and_load_restore_training_state_exactly(tmp_path, lora):
    model, tok = _model(lora)
    params, opt, sched = _opt(model)
    _one_step(model, params, opt, sched)
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    folder = save_checkpoint(tmp_path, 1, model=model, optimizer=opt, scheduler=sched,
                             trainer_state={"rollouts": 1, "sampler": {"epoch": 0, "pos": 2}},
                             tokenizer=tok)
    assert folder.name == "checkpoint-1"
    expect = (random.random(), np.random.rand(), torch.rand(1))
    _one_step(model, params, opt, sched)
    after_one_more = [p.detach().clone() for p in params]

    model2, _ = _model(lora)
    params2, opt2, sched2 = _opt(model2)
    state = load_checkpoint(folder, model=model2, optimizer=opt2, scheduler=sched2)
    assert state["step"] == 1 and state["sampler"] == {"epoch": 0, "pos": 2}
    assert (random.random(), np.random.rand(), torch.rand(1)) == expect
    assert sched2.last_epoch == 1
    _one_step(model2, params2, opt2, sched2)
    for a, b in zip(after_one_more, params2):
        torch.testing.assert_close(a, b)


def test_lora_checkpoint_is_adapter_only_and_full_has_model(tmp_path):
    model, _ = _model(True)
    _, opt, sched = _opt(model)
    folder = save_checkpoint(tmp_path, 3, model=model, optimizer=opt, scheduler=sched,
                             trainer_state={})
    assert (folder / "adapter_model.safetensors").is_file()
    assert not list(folder.glob("model*.safetensors"))
    full, _ = _model(False)
    _, opt, sched = _opt(full)
    with pytest.raises(ConfigError, match="use_lora=true"):
        load_checkpoint(folder, model=full, optimizer=opt, scheduler=sched)


def test_rotation_keeps_the_newest_and_ignores_partial_folders(tmp_path):
    model, _ = _model(True)
    _, opt, sched = _opt(model)
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, model=model, optimizer=opt, scheduler=sched,
                        trainer_state={}, save_total_limit=2)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2",
                                                                    "checkpoint-3"]
    # A folder without trainer_state.json (a non-atomic leftover) is never "latest".
    (tmp_path / "checkpoint-9").mkdir()
    assert latest_checkpoint(tmp_path).name == "checkpoint-3"
    assert resolve_resume(tmp_path).name == "checkpoint-3"
    assert resolve_resume(tmp_path / "checkpoint-2").name == "checkpoint-2"
    with pytest.raises(ConfigError, match="no checkpoint-<step>"):
        resolve_resume(tmp_path / "nowhere")


def test_resave_of_the_same_step_replaces_it(tmp_path):
    model, _ = _model(True)
    _, opt, sched = _opt(model)
    save_checkpoint(tmp_path, 4, model=model, optimizer=opt, scheduler=sched,
                    trainer_state={"v": 1})
    save_checkpoint(tmp_path, 4, model=model, optimizer=opt, scheduler=sched,
                    trainer_state={"v": 2})
    state = json.loads((tmp_path / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["v"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-4"]


def test_metrics_file_skips_torn_lines_and_truncates_on_resume(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "reward": 0.1}\n{"step": 2, "reward": 0.2}\n'
                    '{"step": 3, "reward": 0.3}\n{"step": 4, "rew')
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]
    log = MetricsLogger(tmp_path, resume_step=2)
    log.log({"step": 3, "reward": 0.5, "rewards/accuracy/mean": 0.5,
             "eval/reward": float("nan")})
    log.close()
    rows = read_metrics(path)
    assert [(r["step"], r["reward"]) for r in rows] == [(1, 0.1), (2, 0.2), (3, 0.5)]
    assert rows[-1]["eval/reward"] is None             # NaN is written as null
    assert (tmp_path / "learning_curve.png").stat().st_size > 0


def test_wandb_offline_never_fails_the_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    log = MetricsLogger(tmp_path, report_to=["wandb"], config={"a": 1})
    log.log({"step": 1, "reward": 1.0})
    log.log_samples(1, [{"task_id": 0, "memory_trace": "x", "reward": 1.0}])
    log.close()
    assert read_metrics(tmp_path / "metrics.jsonl")[0]["reward"] == 1.0


def test_resave_killed_between_renames_is_restored_or_swept(tmp_path):
    import os

    model, _ = _model(True)
    _, opt, sched = _opt(model)
    save_checkpoint(tmp_path, 4, model=model, optimizer=opt, scheduler=sched,
                    trainer_state={"v": 1})
    # killed after moving checkpoint-4 aside, before the new one was renamed in
    os.replace(tmp_path / "checkpoint-4", tmp_path / ".checkpoint-4.old-99999")
    assert resolve_resume(tmp_path) == tmp_path / "checkpoint-4"  # restored, not lost
    # a stale .old- copy beside a complete checkpoint is deleted on the next save
    save_checkpoint(tmp_path, 4, model=model, optimizer=opt, scheduler=sched,
                    trainer_state={"v": 2})
    (tmp_path / ".checkpoint-4.old-99998").mkdir()
    save_checkpoint(tmp_path, 6, model=model, optimizer=opt, scheduler=sched,
                    trainer_state={"v": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4", "checkpoint-6"]


def test_missing_untied_lm_head_is_an_error(tmp_path):
    from safetensors.torch import load_file, save_file

    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer
    model = build_tiny_model(build_tiny_tokenizer(), hidden_size=32, seed=1)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    _, opt, sched = _opt(model)
    folder = save_checkpoint(tmp_path, 1, model=model, optimizer=opt, scheduler=sched,
                             trainer_state={})
    [weights] = folder.glob("model*.safetensors")
    state = load_file(str(weights))
    assert "lm_head.weight" in state
    save_file({k: v for k, v in state.items() if k != "lm_head.weight"}, str(weights),
              metadata={"format": "pt"})
    with pytest.raises(ConfigError, match="missing.*lm_head"):
        load_checkpoint(folder, model=model, optimizer=opt, scheduler=sched)


def test_tied_lm_head_may_be_absent(tmp_path):
    model, _ = _model(False)
    _, opt, sched = _opt(model)
    folder = save_checkpoint(tmp_path, 1, model=model, optimizer=opt, scheduler=sched,
                             trainer_state={})
    load_checkpoint(folder, model=model, optimizer=opt, scheduler=sched)


def test_missing_lora_keys_are_an_error(tmp_path):
    from safetensors.torch import load_file, save_file

    model, _ = _model(True)
    _, opt, sched = _opt(model)
    folder = save_checkpoint(tmp_path, 1, model=model, optimizer=opt, scheduler=sched,
                             trainer_state={})
    path = folder / "adapter_model.safetensors"
    state = load_file(str(path))
    dropped = min(state)
    save_file({k: v for k, v in state.items() if k != dropped}, str(path),
              metadata={"format": "pt"})
    with pytest.raises(ConfigError, match="missing"):
        load_checkpoint(folder, model=model, optimizer=opt, scheduler=sched)


def test_resumed_metrics_keep_every_earlier_row(tmp_path):
    log = MetricsLogger(tmp_path)
    for step in range(1, 6):
        log.log({"step": step, "reward": step / 10})
    log.close()
    MetricsLogger(tmp_path, resume_step=3).close()
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    again = MetricsLogger(tmp_path, resume_step=3)
    again.log({"step": 4, "reward": 0.9})
    again.close()
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
