"""`memgym eval`: evaluate an agent recipe on an environment with an LLM backend.

    memgym eval --env MemAgent-HotpotQA-v0 --agent agents/memagent.yaml \\
        --backend vllm --model BytedTsinghua-SIA/RL-MemoryAgent-14B --episodes 128 --out runs/x
    memgym eval --env MemAgent-HotpotQA-v0 --env-kwargs num_docs=800 --agent agents/rag_bm25.yaml \\
        --backend openai --base-url http://127.0.0.1:8000/v1 --model qwen2.5-7b-instruct --out runs/rag

Exit status: 0 when every episode is complete; 3 when some episodes had failed LLM calls
(they are left out of the metrics, the headline counts them, and `--resume` runs them again);
2 on an error (bad flag, env, recipe, a backend that is down or died mid-run); 130 on Ctrl-C.

Sharded (one process per shard, e.g. one per server), then merged into the unsharded run's files:

    memgym eval --env ... --agent ... --shard 0/2 --out runs/x.0 --base-url http://a:8000/v1
    memgym eval --env ... --agent ... --shard 1/2 --out runs/x.1 --base-url http://b:8000/v1
    memgym eval merge runs/x.0 runs/x.1 --out runs/x

One process can also spread its calls over several servers: give --base-url once per server.

With --backend openai the server is probed first: a warning line names each thing it does not
offer (logprobs, token ids, top_k, token-id prompts) and what that costs, and summary.json
records it as `backend_capabilities`.
"""

from __future__ import annotations

import argparse
from typing import Any

from memgym.config import parse_overrides
from memgym.llm import DEFAULT_CPU_THREADS, set_torch_threads

__all__ = ["add_arguments", "default_concurrency", "dialogue_table", "run"]

BACKEND_CHOICES = ("transformers", "hf", "vllm", "openai", "scripted")
SERVER_CONCURRENCY = 64
"""Default episodes in flight against a server (vLLM, OpenAI-compatible): it batches them."""
LOCAL_CONCURRENCY = 32
"""Default episodes in flight for an in-process backend (transformers on CPU)."""
EXIT_INCOMPLETE = 3
"""Exit status of a run that finished with incomplete episodes (memgym.cli documents it)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `memgym eval` flags (and `memgym eval merge DIR... --out DIR`)."""
    parser.add_argument("merge", nargs="*", default=[], metavar="merge DIR",
                        help="`memgym eval merge DIR... --out DIR`: merge the outputs of the "
                             "shards of one run (--shard I/N) into the files the unsharded run "
                             "writes")
    parser.add_argument("--env", default=None, metavar="ID",
                        help="a registered env id (see `memgym envs`), or module:EnvId-v0 for "
                             "an env that module.py registers (found in the current directory)")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="K=V",
                        help="env arguments, e.g. num_docs=800 chunk_tokens=5000; values are YAML")
    parser.add_argument("--agent", default=None, metavar="RECIPE",
                        help="an agent recipe: a shipped one by name (e.g. memagent; `memgym "
                             "agents` lists them), a YAML file (e.g. my_agent.yaml, whose "
                             "kind may be your own package.module:Name), or your own "
                             "package.module:Name with its defaults")
    parser.add_argument("--agent-overrides", nargs="*", default=[], metavar="K=V",
                        help="recipe overrides, e.g. temperature=0 memory_max_new_tokens=512")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default=None,
                        help="LLM backend (not needed by agents that make no LLM calls)")
    parser.add_argument("--model", default=None, metavar="M",
                        help="a named model ('embedded': memgym's tiny model), a local path or a "
                             "hub id (transformers, vllm), the served model name (openai), or a "
                             "'package.module:function' policy (scripted)")
    parser.add_argument("--base-url", action="append", default=None, metavar="URL",
                        help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1; give it "
                             "once per server to spread the calls over several (each call goes "
                             "to the one with the fewest in flight)")
    parser.add_argument("--backend-kwargs", nargs="*", default=[], metavar="K=V",
                        help="more backend arguments, e.g. dtype=bfloat16 max_batch_size=32")
    parser.add_argument("--episodes", type=int, default=None, metavar="N",
                        help="evaluate tasks 0..N-1 (default: every task of the env)")
    parser.add_argument("--avg-k", type=int, default=1, metavar="K",
                        help="attempts per task; metrics are avg@K (default 1)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="run seed (default 0)")
    parser.add_argument("--concurrency", type=int, default=None, metavar="C",
                        help="episodes in flight; the backend batches their calls (default "
                             f"{SERVER_CONCURRENCY} for vllm and openai servers, "
                             f"{LOCAL_CONCURRENCY} otherwise)")
    parser.add_argument("--threads", default=None, metavar="N",
                        help="torch CPU threads of the transformers backend: a number, or "
                             "'auto' for torch's default (one per core). Default: "
                             f"{DEFAULT_CPU_THREADS} on CPU, unless OMP_NUM_THREADS is set "
                             "(see bench/README.md)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="run only shard I of N (from 0) of the (task, attempt) rows; "
                             "`memgym eval merge` joins the N outputs")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out, skipping finished episodes")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--judge-base-url", default=None, metavar="URL",
                        help="dialogue envs: an OpenAI-compatible server for the LLM judge "
                             "(mem0's pinned LoCoMo CORRECT/WRONG prompt, memgym.eval.judge); "
                             "its verdicts go in each question's `judge` and the summary's "
                             "`dialogue` block, its settings and failure counts in "
                             "summary.json's `judge`")
    parser.add_argument("--judge-model", default=None, metavar="M",
                        help="the judge's served model name (with --judge-base-url)")
    parser.add_argument("--judge-kwargs", nargs="*", default=[], metavar="K=V",
                        help="more judge backend arguments, e.g. timeout_s=60 api_key=sk-...")


def default_concurrency(backend: str | None) -> int:
    """Episodes in flight when --concurrency is not given (measured: bench/README.md)."""
    return SERVER_CONCURRENCY if backend in ("vllm", "openai") else LOCAL_CONCURRENCY


def _headline(env_id: str, kind: str, metrics: dict[str, Any]) -> tuple[str, bool]:
    """The one-line result, and whether the run is incomplete (episodes with failed calls)."""
    incomplete = metrics.get("incomplete_episodes", 0)
    failed = metrics.get("errors", {}).get("failed_calls", 0)
    parts = [f"{name} {block['mean']:.4f}" for name, block in metrics["metrics"].items()
             if block["mean"] is not None]
    total = metrics["episodes"] + incomplete
    counts = f"{total} episodes" + (
        f", [bold red]{incomplete} incomplete ({failed} failed calls)[/]" if incomplete else "")
    return (f"[bold]{env_id}[/] {kind}: {counts}, {metrics['tasks']} tasks | "
            + " | ".join(parts)), incomplete > 0


def _probe_server(backend: Any, where: str) -> None:
    """Ask an OpenAI-compatible server what it offers; warn (stderr) about what it lacks.

    Raises:
        BackendError: the probe's first request failed (the server is down, the URL or model
            name is wrong), so the run stops before it starts.
    """
    from rich.console import Console
    from rich.markup import escape

    from memgym.errors import BackendError

    try:
        capabilities = backend.probe()
    except BackendError as exc:
        raise BackendError(f"the first LLM call of the run failed ({where}): {exc}") from exc
    console = Console(stderr=True)
    for line in capabilities.warnings():
        console.print("[bold yellow]warning[/]: " + escape(line))


def run(args: argparse.Namespace) -> int:
    """Load the recipe, build the backend and the agent, evaluate, print the headline metrics.

    Returns 0, or 3 when some episodes are incomplete (see the module docstring).
    """
    from memgym.agents.recipe import build_agent

    if args.merge:
        return _merge(args)
    recipe, env_kwargs, judge = _checked_inputs(args)  # every offline check, before any model
    backend, fail_fast, model = _open_backend(args, recipe, env_kwargs)
    try:
        agent = build_agent(recipe, fail_fast)
        summary = _evaluate(args, agent, recipe, env_kwargs, judge, fail_fast, model)
    finally:
        for closing in (backend, getattr(judge, "backend", None)):
            close = getattr(closing, "close", None)
            if callable(close):
                close()
    return _report(args, recipe, judge, summary)


def _checked_inputs(args: argparse.Namespace) -> tuple[Any, dict[str, Any], Any]:
    """The recipe, the env kwargs and the judge, all validated offline (typos fail in a second).

    Raises:
        ConfigError: a missing --env/--agent, a bad --shard, recipe, env id or kwarg, or judge
            flags.
    """
    from memgym.agents.recipe import load_recipe
    from memgym.envs.validation import align_answer_format, validate_env
    from memgym.errors import ConfigError

    if args.env is None or args.agent is None:
        raise ConfigError("memgym eval needs --env ID and --agent RECIPE (see `memgym eval "
                          "--help`), or `memgym eval merge DIR... --out DIR` to merge shards")
    if args.shard is not None:
        from memgym.eval.shards import parse_shard

        parse_shard(args.shard)
    recipe = load_recipe(args.agent, args.agent_overrides)
    env_kwargs = parse_overrides(args.env_kwargs)
    validate_env(args.env, env_kwargs)
    align_answer_format(args.env, env_kwargs, recipe.config)
    return recipe, env_kwargs, _build_judge(args)


def _open_backend(args: argparse.Namespace, recipe: Any, env_kwargs: dict[str, Any]
                  ) -> tuple[Any, Any, str | None]:
    """The run's backend, the fail-fast wrapper the agent calls through, and the model path.

    Without --backend both are None (for an agent that makes no LLM call on the run's backend).
    A local model's own tokenizer becomes the env's, so chunks and memory budgets count its
    tokens, as MemAgent does.
    """
    from memgym.envs.validation import env_accepts
    from memgym.errors import ConfigError
    from memgym.eval.runner import FailFast
    from memgym.llm import LOCAL_BACKENDS, BackendSpec, build_backend

    if args.backend is None:
        if recipe.needs_backend:
            raise ConfigError(f"{args.agent}: agent kind {recipe.kind!r} calls an LLM; pass "
                              "--backend and --model")
        return None, None, args.model
    model = args.model
    if args.backend in LOCAL_BACKENDS and model:
        from memgym.models import resolve_model_path

        model = resolve_model_path(model)  # fails at once, offline, saying what it tried
    if args.backend in ("transformers", "hf"):  # the others run no torch model here
        set_torch_threads(args.threads, setting="--threads")
    backend = build_backend(BackendSpec(args.backend, model, args.base_url,
                                        parse_overrides(args.backend_kwargs)),
                            resolve_model=False)
    if (args.backend in LOCAL_BACKENDS and "tokenizer" not in env_kwargs
            and env_accepts(args.env, "tokenizer")):  # the dialogue envs count no tokens
        env_kwargs["tokenizer"] = model
    where = (f"{args.backend} at {', '.join(args.base_url)}" if args.base_url
             else f"{args.backend} model {args.model}")
    fail_fast = FailFast(backend, where)
    if args.backend == "openai":
        _probe_server(backend, where)
    return backend, fail_fast, model


def _evaluate(args: argparse.Namespace, agent: Any, recipe: Any, env_kwargs: dict[str, Any],
              judge: Any, fail_fast: Any, model: str | None) -> dict[str, Any]:
    """Run the evaluation into --out; the summary (with the judge's report when there is one)."""
    from memgym.eval.runner import evaluate
    from memgym.models.trained_tasks import warn_if_trained_on

    run_info = {"agent_recipe_file": recipe.source, "agent_recipe_text": recipe.text,
                "backend": args.backend, "model": args.model,
                "base_url": args.base_url[0] if args.base_url and len(args.base_url) == 1
                else args.base_url,
                "backend_kwargs": parse_overrides(args.backend_kwargs)}
    if model != args.model:
        run_info["model_path"] = model
    make_env = None
    if judge is not None:  # injected at construction; run.json records its settings instead
        import gymnasium as gym

        run_info["judge"] = judge.settings()

        def make_env() -> Any:
            return gym.make(args.env, **env_kwargs, judge=judge)
    warn_if_trained_on(args.model, args.env, env_kwargs, args.episodes)  # its training tasks
    summary = evaluate(args.env, agent, out_dir=args.out, env_kwargs=env_kwargs,
                       episodes=args.episodes, avg_k=args.avg_k, seed=args.seed,
                       concurrency=args.concurrency or default_concurrency(args.backend),
                       resume=args.resume, recipe=recipe.to_dict(), run_info=run_info,
                       fail_fast=fail_fast, progress=not args.no_progress, shard=args.shard,
                       make_env=make_env)
    if judge is not None:
        summary["judge"] = _record_judge(args.out, judge)
    return summary


def _report(args: argparse.Namespace, recipe: Any, judge: Any, summary: dict[str, Any]) -> int:
    """Print the headline, the dialogue table and what to do about failures; the exit status."""
    from rich.console import Console

    console = Console(stderr=True)
    line, incomplete = _headline(args.env, recipe.kind, summary["metrics"])
    console.print(line)
    if "dialogue" in summary["metrics"]:
        console.print(dialogue_table(summary["metrics"]["dialogue"]))
    if judge is not None and summary["metrics"].get("dialogue", {}).get("judge_failed"):
        failures = summary["judge"]["failures"]
        console.print(f"[bold yellow]judge[/]: {summary['metrics']['dialogue']['judge_failed']} "
                      f"questions without a verdict (this run: {failures['request']} failed "
                      f"requests, {failures['unparseable']} unparseable replies; examples in "
                      "summary.json's judge.failure_examples); they are left out of the judge "
                      "score")
    console.print(f"wrote {args.out}/predictions.jsonl, traces.jsonl, summary.json")
    if incomplete:
        console.print("[bold red]incomplete run[/]: episodes with failed LLM calls are left out "
                      "of the metrics (see their turns' errors in predictions.jsonl); fix the "
                      "cause and rerun the same command with --resume to run them again")
        return EXIT_INCOMPLETE
    return 0


def _build_judge(args: argparse.Namespace) -> Any:
    """The LLM judge of --judge-base-url / --judge-model, or None; refuses an env without one.

    Raises:
        ConfigError: only one of the two flags, or an env that takes no `judge` (not a
            dialogue env).
    """
    from memgym.envs.validation import env_accepts
    from memgym.errors import ConfigError

    if args.judge_base_url is None and args.judge_model is None:
        if args.judge_kwargs:
            raise ConfigError("--judge-kwargs needs --judge-base-url URL and --judge-model M")
        return None
    if args.judge_base_url is None or args.judge_model is None:
        raise ConfigError("the LLM judge needs both --judge-base-url URL (an OpenAI-compatible "
                          "server) and --judge-model M (its served model name)")
    if not env_accepts(args.env, "judge"):
        raise ConfigError(f"--judge-model: {args.env} takes no judge; the LLM judge scores the "
                          "dialogue envs' answers (MemoryR1-LoCoMo-v0, RMM-LongMemEval-v0, ...)")
    from memgym.eval.judge import build_judge

    return build_judge(args.judge_base_url, args.judge_model, parse_overrides(args.judge_kwargs))


def _record_judge(out: str, judge: Any) -> dict[str, Any]:
    """Add the judge's settings and this run's counts to summary.json (as `judge`); return them."""
    import json
    from pathlib import Path

    from memgym.eval.runner import SUMMARY

    path = Path(out) / SUMMARY
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["judge"] = judge.report()
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary["judge"]


def dialogue_table(dialogue: dict[str, Any]) -> Any:
    """The per-category table of a dialogue summary (F1, BLEU-1, EM, judge), then overall."""
    from rich.table import Table

    table = Table(title="dialogue questions")
    for name in ("category", "questions", "F1", "BLEU-1", "EM", "judge", "recall"):
        table.add_column(name, justify="left" if name == "category" else "right")

    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}"

    rows = [*dialogue["by_category"].items(), ("overall", dialogue["overall"])]
    for name, block in rows:
        recall = block["recall_turn"] if block["recall_turn"] is not None else \
            block["recall_session"]
        table.add_row(name or "-", str(block["questions"]), cell(block["f1"]),
                      cell(block["bleu1"]), cell(block["em"]), cell(block["judge"]),
                      cell(recall))
    return table


def _merge(args: argparse.Namespace) -> int:
    """`memgym eval merge DIR... --out DIR`: merge shard outputs, print the headline."""
    from rich.console import Console

    from memgym.errors import ConfigError
    from memgym.eval.shards import merge_shards

    if args.merge[0] != "merge":
        raise ConfigError(f"memgym eval: unexpected argument {args.merge[0]!r}; to merge shards "
                          "run `memgym eval merge DIR... --out DIR`")
    summary = merge_shards(args.merge[1:], args.out)
    run = summary["run"]
    line, incomplete = _headline(run["env_id"], str(run.get("recipe", {}).get("kind", "")),
                                 summary["metrics"])
    console = Console(stderr=True)
    console.print(line)
    console.print(f"merged {len(args.merge) - 1} shards into {args.out}/predictions.jsonl, "
                  "traces.jsonl, summary.json")
    return EXIT_INCOMPLETE if incomplete else 0
