"""Checkpoints: `checkpoint-<step>` folders written atomically, rotated, and restored exactly.

A checkpoint holds everything the next step depends on: the trained weights (the LoRA adapter in
peft's format, or the full model in transformers' format, both loadable by their libraries), the
optimizer and scheduler states, the step, the task sampler's position and the RNG states of
python, numpy and torch. A run killed at any moment (even SIGKILL mid-write) leaves either the
previous complete checkpoint or the new complete one: the folder is written under a temporary
name and renamed into place.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memgym.errors import ConfigError

__all__ = [
    "CHECKPOINT_PREFIX",
    "latest_checkpoint",
    "load_checkpoint",
    "read_trainer_state",
    "resolve_resume",
    "rng_state",
    "rotate_checkpoints",
    "save_checkpoint",
    "set_rng_state",
    "sweep_leftovers",
]

CHECKPOINT_PREFIX = "checkpoint-"
_STEP = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")
_STATE_FILE = "trainer_state.json"


def rng_state() -> dict[str, Any]:
    """The python, numpy, torch (and CUDA) RNG states, for a checkpoint."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states saved by `rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _is_peft(model: torch.nn.Module) -> bool:
    return hasattr(model, "peft_config")


def _save_weights(model: torch.nn.Module, folder: Path) -> None:
    # peft saves only the adapter; transformers saves the full model (sharded when large).
    model.save_pretrained(str(folder))


def _load_weights(model: torch.nn.Module, folder: Path) -> None:
    from safetensors.torch import load_file

    if _is_peft(model):
        from peft import set_peft_model_state_dict

        path = folder / "adapter_model.safetensors"
        if not path.is_file():
            raise ConfigError(f"{folder} holds no LoRA adapter (adapter_model.safetensors); was "
                              "it written by a full fine-tuning run? Resume with use_lora=false")
        result = set_peft_model_state_dict(model, load_file(str(path)))
        unexpected = getattr(result, "unexpected_keys", [])
        # missing_keys lists every base weight too; only adapter weights must all be there
        missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
        if unexpected or missing:
            raise ConfigError(f"{path}: adapter keys do not match this model (missing "
                              f"{missing[:3]}, unexpected {unexpected[:3]}); was it written with "
                              "other lora_target_modules or lora_r?")
        return
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise ConfigError(f"{folder} holds no model weights (model*.safetensors); was it "
                          "written by a LoRA run? Resume with use_lora=true")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Only a weight tied to another (lm_head to the embeddings) may be absent from the file.
    missing = [k for k in missing if not _is_tied(model, k)]
    if missing or unexpected:
        raise ConfigError(f"{folder}: checkpoint does not match the model (missing "
                          f"{missing[:3]}, unexpected {unexpected[:3]})")


def _is_tied(model: torch.nn.Module, key: str) -> bool:
    """Whether parameter `key` shares its storage with another parameter of `model`."""
    params = dict(model.named_parameters(remove_duplicate=False))
    tensor = params.get(key)
    if tensor is None:
        return False
    return any(other is tensor for name, other in params.items() if name != key)


def sweep_leftovers(output_dir: str | Path) -> None:
    """Clean up after writes killed mid-way: temporary folders, and re-save leftovers.

    A same-step re-save moves the old `checkpoint-N` aside to `.checkpoint-N.old-<pid>` before
    renaming the new one in; killed between the two, only the `.old-` copy holds step N, so it is
    renamed back. Otherwise the `.old-` copy is stale and deleted.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return
    mine = f"-{os.getpid()}"
    for path in output_dir.glob(f".{CHECKPOINT_PREFIX}*.tmp-*"):
        if not path.name.endswith(mine):
            shutil.rmtree(path, ignore_errors=True)
    for path in output_dir.glob(f".{CHECKPOINT_PREFIX}*.old-*"):
        final = output_dir / path.name[1:].rsplit(".old-", 1)[0]
        if not final.exists() and (path / _STATE_FILE).is_file():
            os.replace(path, final)
        else:
            shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(output_dir: str | Path, step: int, *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, trainer_state: dict,
                    tokenizer: Any = None, save_total_limit: int | None = None) -> Path:
    """Write `output_dir/checkpoint-<step>` atomically and drop checkpoints beyond the limit.

    Args:
        output_dir: the run folder.
        step: the optimizer step just completed.
        model: the trained model (peft or plain transformers).
        optimizer, scheduler: their `state_dict()`s are saved.
        trainer_state: JSON-serialisable state (step, sampler position, ...).
        tokenizer: saved beside full-model weights so the folder loads on its own.
        save_total_limit: keep at most this many checkpoints (None: all).

    Returns:
        The checkpoint folder.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(output_dir)
    final = output_dir / f"{CHECKPOINT_PREFIX}{step}"
    tmp = output_dir / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    _save_weights(model, tmp)
    if tokenizer is not None and not _is_peft(model):
        tokenizer.save_pretrained(str(tmp))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rng_state(), tmp / "rng_state.pt")
    (tmp / _STATE_FILE).write_text(json.dumps({**trainer_state, "step": step}, indent=2))
    _fsync_tree(tmp)
    if final.exists():  # a re-save of the same step: move the old one aside first
        old = output_dir / f".{final.name}.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(output_dir)
    if save_total_limit is not None:
        rotate_checkpoints(output_dir, save_total_limit)
    return final


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for path in output_dir.iterdir() if output_dir.is_dir() else ():
        m = _STEP.match(path.name)
        if m and path.is_dir() and (path / _STATE_FILE).is_file():
            found.append((int(m.group(1)), path))
    return sorted(found)


def rotate_checkpoints(output_dir: str | Path, limit: int) -> list[Path]:
    """Delete the oldest checkpoints so at most `limit` remain; returns the deleted folders."""
    found = _checkpoints(Path(output_dir))
    doomed = [p for _, p in found[:max(0, len(found) - limit)]]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    sweep_leftovers(output_dir)
    return doomed


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete `checkpoint-<step>` folder in `output_dir`, or None."""
    found = _checkpoints(Path(output_dir))
    return found[-1][1] if found else None


def resolve_resume(path: str | Path) -> Path:
    """A `--resume` argument (a run folder or one checkpoint folder) -> the checkpoint folder."""
    path = Path(path)
    if (path / _STATE_FILE).is_file():
        return path
    sweep_leftovers(path)
    latest = latest_checkpoint(path)
    if latest is None:
        raise ConfigError(f"--resume {path}: no {CHECKPOINT_PREFIX}<step> folder with "
                          f"{_STATE_FILE} found there; pass a run's output_dir or a checkpoint "
                          "folder")
    return latest


def read_trainer_state(folder: str | Path) -> dict:
    """The trainer state (step, sampler position, stored config, ...) of a checkpoint folder."""
    return json.loads((Path(folder) / _STATE_FILE).read_text())


def load_checkpoint(folder: str | Path, *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any) -> dict:
    """Restore weights, optimizer, scheduler and RNG states in place; returns the trainer state."""
    folder = Path(folder)
    _load_weights(model, folder)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
    set_rng_state(torch.load(folder / "rng_state.pt", weights_only=False))
    return json.loads((folder / _STATE_FILE).read_text())
