"""Build an LLM backend from a spec: the one place `--backend/--model/--base-url`, a recipe
component's own `backend:` and a frozen reader's backend turn into a backend object.

    >>> backend = build_backend(BackendSpec("scripted", model="mymod:policy"))
    >>> backend = build_backend(BackendSpec("openai", model="qwen",
    ...                                     base_url=["http://a/v1", "http://b/v1"]))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memgym.errors import ConfigError
from memgym.imports import import_callable
from memgym.llm.base import LLMBackend

__all__ = ["LOCAL_BACKENDS", "BackendSpec", "build_backend"]

LOCAL_BACKENDS = ("transformers", "hf", "vllm")
"""Backends that load the weights in this process: their `model` may be a memgym model name."""


@dataclass
class BackendSpec:
    """Which LLM backend to build, as `memgym eval --backend/--model/--base-url/--backend-kwargs`.

    In a recipe, a component's own backend, e.g. a frozen API model as the extractor while the
    trained policy manages: `extractor: {backend: {backend: openai, model: gpt-4o-mini,
    base_url: http://127.0.0.1:8000/v1}}`.
    """

    backend: str
    """transformers (hf), vllm, openai or scripted."""
    model: str | None = None
    """A named model, local path or hub id (transformers, vllm); the served name (openai); a
    policy import path 'package.module:function' (scripted)."""
    base_url: str | list[str] | None = None
    """The server's URL (openai only); several URLs spread the calls over the servers."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """More backend arguments, as `--backend-kwargs`."""


def build_backend(spec: BackendSpec, *, resolve_model: bool = True,
                  flag: str = "--") -> LLMBackend:
    """Build the backend `spec` names.

    Args:
        spec: the backend, model, server URL(s) and extra arguments.
        resolve_model: turn a memgym model name ("smollm2-135m-instruct") of a local backend into
            its prepared folder (fails at once, offline, saying what it tried).
        flag: how error messages name the settings: "--" for the CLI flags (`--model`), or a
            recipe key prefix such as "extractor.backend." .

    Raises:
        ConfigError: a missing model or URL, a URL for a backend that takes none, or an unknown
            backend name (the message suggests the nearest).
    """
    from memgym.llm import make_backend

    urls = [spec.base_url] if isinstance(spec.base_url, str) else list(spec.base_url or [])
    name = spec.backend.strip().lower()
    url_key = "--base-url" if flag == "--" else f"{flag}base_url"
    if urls and name != "openai":
        raise ConfigError(f"{url_key} is for backend openai, not {spec.backend}")
    if len(urls) > 1:
        from memgym.llm.balance import LoadBalancedBackend

        return LoadBalancedBackend([build_backend(BackendSpec(name, spec.model, url, spec.kwargs),
                                                  resolve_model=resolve_model, flag=flag)
                                    for url in urls])
    extra = dict(spec.kwargs)
    if name == "scripted":
        if not spec.model:
            raise ConfigError(f"backend scripted needs {flag}model package.module:function, the "
                              "policy that maps a GenerationRequest to a reply")
        return make_backend("scripted", policy=import_callable(spec.model, key=f"{flag}model"),
                            **extra)
    if not spec.model:
        raise ConfigError(f"backend {spec.backend} needs {flag}model (a model id, local path or "
                          "served model name)")
    model = spec.model
    if resolve_model and name in LOCAL_BACKENDS:
        from memgym.models import resolve_model_path

        model = resolve_model_path(model)
    kwargs: dict[str, Any] = {"model": model, **extra}
    if urls:
        kwargs["base_url"] = urls[0]
    elif name == "openai":
        raise ConfigError(f"backend openai needs {url_key}, e.g. http://127.0.0.1:8000/v1")
    return make_backend(name, **kwargs)
