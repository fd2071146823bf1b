"""Merge a LoRA checkpoint of `memgym train` into a plain model folder (`memgym models merge`).

A LoRA run's `checkpoint-<step>` holds only the adapter (peft's adapter_config.json and
adapter_model.safetensors) and the trainer's state; a full fine-tuning checkpoint is already a
model folder (`memgym eval --model runs/x/checkpoint-N` loads it as it is). Merged, the adapter's
weights are added into its base model's and saved with the base's tokenizer, so the folder loads
in transformers, vLLM or `memgym eval --model OUT` without peft:

    memgym models merge runs/x/checkpoint-40 runs/x/merged-40     # base: the adapter's own
    memgym models merge runs/x/checkpoint-40 out --base smollm2-135m-instruct
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from memgym.errors import ConfigError

__all__ = ["merge_checkpoint"]


def _base_folder(checkpoint: Path, base: str | None) -> Path:
    """The base model's local folder: `base`, else the adapter's base_model_name_or_path."""
    from memgym.models.resolve import resolve_model_path

    config = json.loads((checkpoint / "adapter_config.json").read_text())
    spec = base or config.get("base_model_name_or_path")
    if not spec:
        raise ConfigError(f"{checkpoint}/adapter_config.json names no base model; pass --base "
                          "MODEL (the model the run trained: a name, a folder or a hub id)")
    folder = Path(resolve_model_path(spec))
    if not folder.is_dir():
        raise ConfigError(f"base model {spec!r} resolved to {folder}, not a local folder; "
                          "download it first (or pass --base FOLDER)")
    return folder


def merge_checkpoint(checkpoint: str | Path, out: str | Path, base: str | None = None) -> Path:
    """Write `out`: the base model with the LoRA adapter of `checkpoint` merged in.

    Args:
        checkpoint: a LoRA `checkpoint-<step>` folder (or any peft adapter folder).
        out: the new model folder (must not exist, or be empty).
        base: the base model (name, folder or hub id); default: the one the adapter records.

    Raises:
        ConfigError: not an adapter (a full checkpoint needs no merge), no base model, or `out`
            holds files.
    """
    from memgym.models.preparation import merge_adapter

    checkpoint, out = Path(checkpoint), Path(out)
    if not (checkpoint / "adapter_config.json").is_file():
        if (checkpoint / "config.json").is_file():
            raise ConfigError(f"{checkpoint} holds a full model (config.json, no LoRA adapter): "
                              f"nothing to merge; evaluate it as it is: --model {checkpoint}")
        raise ConfigError(f"{checkpoint} has no adapter_config.json: give a LoRA checkpoint "
                          "folder of `memgym train` (runs/NAME/checkpoint-STEP)")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} already holds files; choose a new folder")
    base_dir = _base_folder(checkpoint, base)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    merge_adapter(base_dir, checkpoint, partial, name=str(out))
    if out.exists():
        out.rmdir()
    partial.rename(out)
    return out
