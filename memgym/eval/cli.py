"""`memgym eval`: evaluate an agent recipe on an environment with an LLM backend.

    memgym eval --env MemAgent-HotpotQA-v0 --agent agents/memagent.yaml \\
        --backend vllm --model BytedTsinghua-SIA/RL-MemoryAgent-14B --episodes 128 --out runs/x
    memgym eval --env MemAgent-HotpotQA-v0 --env-kwargs num_docs=800 --agent agents/rag_bm25.yaml \\
        --backend openai --base-url http://127.0.0.1:8000/v1 --model qwen2.5-7b-instruct --out runs/rag
"""

from __future__ import annotations

import argparse
from typing import Any

from memgym.config import parse_overrides

__all__ = ["add_arguments", "build_backend", "run"]

BACKEND_CHOICES = ("transformers", "hf", "vllm", "openai", "scripted")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `memgym eval` flags."""
    parser.add_argument("--env", required=True, metavar="ID",
                        help="a registered env id (see `memgym envs`)")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="K=V",
                        help="env arguments, e.g. num_docs=800 chunk_tokens=5000; values are YAML")
    parser.add_argument("--agent", required=True, metavar="RECIPE",
                        help="an agent recipe, e.g. agents/memagent.yaml")
    parser.add_argument("--agent-overrides", nargs="*", default=[], metavar="K=V",
                        help="recipe overrides, e.g. temperature=0 memory_max_new_tokens=512")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default=None,
                        help="LLM backend (not needed by agents that make no LLM calls)")
    parser.add_argument("--model", default=None, metavar="M",
                        help="model id or local path (transformers, vllm), the served model name "
                             "(openai), or 'package.module:function' policy (scripted)")
    parser.add_argument("--base-url", default=None, metavar="URL",
                        help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--backend-kwargs", nargs="*", default=[], metavar="K=V",
                        help="more backend arguments, e.g. dtype=bfloat16 max_batch_size=32")
    parser.add_argument("--episodes", type=int, default=None, metavar="N",
                        help="evaluate tasks 0..N-1 (default: every task of the env)")
    parser.add_argument("--avg-k", type=int, default=1, metavar="K",
                        help="attempts per task; metrics are avg@K (default 1)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="run seed (default 0)")
    parser.add_argument("--concurrency", type=int, default=None, metavar="C",
                        help="episodes in flight; the backend batches their calls (default 64 "
                             "for vllm and openai servers, 8 otherwise)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out, skipping finished episodes")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_backend(name: str, model: str | None, base_url: str | None,
                  extra: dict[str, Any]) -> Any:
    """Build the named backend from the CLI's flags (the scripted backend's model is a policy)."""
    from memgym.errors import ConfigError
    from memgym.llm import make_backend

    if name == "scripted":
        from memgym.agents.policy import import_callable

        if not model:
            raise ConfigError("--backend scripted needs --model package.module:function, the "
                              "policy that maps a GenerationRequest to a reply")
        return make_backend("scripted", policy=import_callable(model, key="--model"), **extra)
    if not model:
        raise ConfigError(f"--backend {name} needs --model (a model id, local path or served "
                          "model name)")
    kwargs = {"model": model, **extra}
    if base_url is not None:
        if name != "openai":
            raise ConfigError(f"--base-url is for --backend openai, not {name}")
        kwargs["base_url"] = base_url
    elif name == "openai":
        raise ConfigError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1")
    return make_backend(name, **kwargs)


def run(args: argparse.Namespace) -> int:
    """Load the recipe, build the backend and the agent, evaluate, print the headline metrics."""
    from rich.console import Console

    from memgym.agents.recipe import build_agent, load_recipe
    from memgym.errors import ConfigError
    from memgym.eval.runner import FailFast, evaluate

    recipe = load_recipe(args.agent, args.agent_overrides)
    env_kwargs = parse_overrides(args.env_kwargs)
    backend = fail_fast = None
    if args.backend is not None:
        backend = build_backend(args.backend, args.model, args.base_url,
                                parse_overrides(args.backend_kwargs))
        if args.backend in ("transformers", "hf", "vllm") and "tokenizer" not in env_kwargs:
            # chunks and memory budgets count the model's own tokens, as MemAgent does
            env_kwargs["tokenizer"] = args.model
        where = f"{args.backend} at {args.base_url}" if args.base_url else \
            f"{args.backend} model {args.model}"
        fail_fast = FailFast(backend, where)
    elif recipe.needs_backend:
        raise ConfigError(f"{args.agent}: agent kind {recipe.kind!r} calls an LLM; pass "
                          "--backend and --model")
    agent = build_agent(recipe, fail_fast)
    concurrency = args.concurrency or (64 if args.backend in ("vllm", "openai") else 8)
    run_info = {"agent_recipe_file": recipe.source, "agent_recipe_text": recipe.text,
                "backend": args.backend, "model": args.model, "base_url": args.base_url,
                "backend_kwargs": parse_overrides(args.backend_kwargs)}
    try:
        summary = evaluate(args.env, agent, out_dir=args.out, env_kwargs=env_kwargs,
                           episodes=args.episodes, avg_k=args.avg_k, seed=args.seed,
                           concurrency=concurrency, resume=args.resume,
                           recipe=recipe.to_dict(), run_info=run_info, fail_fast=fail_fast,
                           progress=not args.no_progress)
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    metrics = summary["metrics"]
    console = Console(stderr=True)
    parts = [f"{name} {block['mean']:.4f}" for name, block in metrics["metrics"].items()
             if block["mean"] is not None]
    console.print(f"[bold]{args.env}[/] {recipe.kind}: {metrics['episodes']} episodes, "
                  f"{metrics['tasks']} tasks | " + " | ".join(parts))
    console.print(f"wrote {args.out}/predictions.jsonl, traces.jsonl, summary.json")
    return 0
