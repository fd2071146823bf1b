"""LLM backends: one small protocol, four implementations.

    >>> from memgym.llm import make_backend, GenerationRequest
    >>> backend = make_backend("scripted", policy=["42"])
    >>> backend = make_backend("hf", model="Qwen/Qwen2.5-0.5B-Instruct")      # transformers
    >>> backend = make_backend("openai", base_url="http://localhost:8000/v1", model="qwen")
    >>> backend = build_backend(BackendSpec("hf", model="smollm2-135m-instruct"))  # as the CLI

`build_backend` (memgym.llm.spec) is the one place a backend is built from a spec: the CLI's
flags, a recipe component's own `backend:` and the trainer's frozen reader all go through it.

The backend classes are imported lazily (on first attribute access), so `import memgym.llm`
stays light: torch, transformers, httpx and vllm load only when their backend is used.
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import TYPE_CHECKING, Any

from memgym.errors import ConfigError, unknown_name
from memgym.llm.base import (
    BackendUnavailable,
    Completion,
    GenerationRequest,
    LLMBackend,
    Message,
    SamplingParams,
    cut_at_stop,
    strip_think,
)
from memgym.llm.spec import LOCAL_BACKENDS, BackendSpec, build_backend

if TYPE_CHECKING:
    from memgym.llm.hf import TransformersBackend
    from memgym.llm.openai import (
        OpenAIBackend,
        ServerCapabilities,
        require_training_capabilities,
    )
    from memgym.llm.scripted import ScriptedBackend
    from memgym.llm.vllm import VLLMBackend

__all__ = [
    "BACKENDS",
    "DEFAULT_CPU_THREADS",
    "LOCAL_BACKENDS",
    "BackendSpec",
    "BackendUnavailable",
    "Completion",
    "GenerationRequest",
    "LLMBackend",
    "Message",
    "OpenAIBackend",
    "SamplingParams",
    "ScriptedBackend",
    "ServerCapabilities",
    "TransformersBackend",
    "VLLMBackend",
    "build_backend",
    "cut_at_stop",
    "make_backend",
    "require_training_capabilities",
    "set_torch_threads",
    "strip_think",
]

_LAZY = {
    "ScriptedBackend": "memgym.llm.scripted",
    "TransformersBackend": "memgym.llm.hf",
    "VLLMBackend": "memgym.llm.vllm",
    "OpenAIBackend": "memgym.llm.openai",
    "ServerCapabilities": "memgym.llm.openai",
    "require_training_capabilities": "memgym.llm.openai",
}

BACKENDS: dict[str, str] = {
    "transformers": "TransformersBackend",
    "hf": "TransformersBackend",
    "vllm": "VLLMBackend",
    "openai": "OpenAIBackend",
    "scripted": "ScriptedBackend",
}
"""Backend names accepted by `make_backend` (and recipes), mapped to their class names."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'memgym.llm' has no attribute {name!r}")


def make_backend(name: str, **kwargs: Any) -> LLMBackend:
    """Build a backend by name: "transformers" (alias "hf"), "vllm", "openai" or "scripted".

    Args:
        name: the backend name (case-insensitive).
        **kwargs: the backend class's constructor arguments.

    Raises:
        UnknownNameError: `name` is not a backend (the message suggests the nearest).
        ConfigError: the constructor rejected the arguments (the message names them).
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in BACKENDS:
        raise unknown_name("LLM backend", str(name), BACKENDS)
    cls = __getattr__(BACKENDS[key])
    try:  # check the arguments first, so a TypeError inside the constructor is not mislabelled
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"make_backend({name!r}, {', '.join(f'{k}=...' for k in kwargs)}): {exc}. "
            f"See help(memgym.llm.{cls.__name__}) for its arguments."
        ) from exc
    return cls(**kwargs)


DEFAULT_CPU_THREADS = 1
"""torch CPU threads when a model runs on the CPU and neither the user nor OMP_NUM_THREADS says
otherwise: on shared machines torch's default (one per core) fought other jobs and swung
SmolLM2 from 36 to 1.2 tokens/s, while one thread held 9-10 (bench/README.md)."""


def set_torch_threads(threads: int | str | None, *, device: Any = None,
                      setting: str = "threads") -> int | None:
    """Set torch's CPU threads for a model that runs on this machine's CPU.

    The one place memgym picks CPU threads: `memgym eval --threads`, the trainer's
    `torch_threads`, `TransformersBackend(threads=...)` and the quickstart all call it.

    Args:
        threads: a positive number; "auto" for torch's default (one per core); None for the
            default: OMP_NUM_THREADS when set (torch already honours it), else
            DEFAULT_CPU_THREADS.
        device: where the model runs; anything but a CPU leaves torch alone (CPU threads only
            feed a GPU). None means "cuda if available, else cpu".
        setting: the name of the setting, for the error message (e.g. "--threads").

    Returns:
        The thread count set, or None when torch was left as it was.

    Raises:
        ConfigError: `threads` is neither a positive number nor "auto".
    """
    if threads is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return None
        threads = DEFAULT_CPU_THREADS
    if threads == "auto":
        return None
    text = str(threads)
    if isinstance(threads, bool) or not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{setting}={threads!r}: give a positive number of CPU threads or "
                          "'auto' (torch's default, one per core)")
    import torch

    if device is None:
        on_cpu = not torch.cuda.is_available()
    else:
        on_cpu = torch.device(device).type == "cpu"
    if not on_cpu:
        return None
    torch.set_num_threads(int(text))
    return int(text)
