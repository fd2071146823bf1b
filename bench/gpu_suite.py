"""Every GPU measurement of issue 14 item 7 in one command: one table, one JSON file.

Steps (each a subprocess with its own time limit; a failed, timed-out or skipped step is a row
of the table and never stops the others):

- engine:  memgym's transformers engine, 32 concurrent episodes vs one padded `model.generate`
           (bench/bench_backend.py, greedy, so the ids are compared too);
- static:  a static KV cache + compiled decode. memgym's engine (memgym/llm/hf.py) has no such
           option (it decodes with transformers' dynamic cache), so this measures the reference:
           `model.generate(cache_implementation="static")` (transformers compiles the decode
           step itself for a static cache on a GPU) on the same requests, first call (compile)
           and warm call timed apart;
- trainer: memgym's GRPO trainer vs TRL's GRPOTrainer, SmolLM2 with LoRA
           (bench/bench_trainer.py --model --lora);
- quickstart: a shortened GPU quickstart: build the 8x384 MemAgent model of
           train/tiny_memagent_gpu.yaml with fewer demonstration steps, then a few GRPO steps of
           that recipe, reward before/after;
- grpo:    GRPO of SmolLM2 on MemAgent-HotpotQA (train/smollm2_memagent.yaml) from
           `smollm2-135m-memagent` when memgym knows it and it is present, else from
           `smollm2-135m-instruct` (said in the row), eval reward before/after.

    python bench/gpu_suite.py --out runs/gpu_suite.json          # on the GPU (see gpu_suite.sh)
    python bench/gpu_suite.py --smoke --out /tmp/smoke.json      # CPU, tiny model: the plumbing

`--only a,b` picks steps; `--timeout NAME=SECONDS` changes one step's limit. The JSON holds
{"suite", "smoke", "device", "notes", "steps": [{"name", "title", "status", "seconds",
"timeout_s", "metrics", "detail"}]}; status is one of ok, failed, timeout, skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
STATUSES = ("ok", "failed", "timeout", "skipped")
SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_MEMAGENT = "smollm2-135m-memagent"


@dataclass
class StepResult:
    """One row of the table."""

    name: str
    title: str
    status: str = "skipped"
    seconds: float = 0.0
    timeout_s: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass
class Plan:
    """What one step runs: a command (or a reason to skip) and how to read its results."""

    command: list[str] | None
    parse: Callable[[str, Path], dict[str, Any]]
    skip: str = ""
    note: str = ""


# ---------------------------------------------------------------------------------------------
# model availability
# ---------------------------------------------------------------------------------------------
def model_present(name: str) -> bool:
    """Whether memgym knows the named model and its folder is prepared."""
    from memgym.models import registry

    return name in registry.MODELS and registry.is_present(name)


def grpo_start_model() -> tuple[str | None, str]:
    """The model GRPO starts from and a sentence saying why (None: neither is present)."""
    if model_present(SMOLLM2_MEMAGENT):
        return SMOLLM2_MEMAGENT, f"from {SMOLLM2_MEMAGENT}"
    if model_present(SMOLLM2):
        return SMOLLM2, (f"from {SMOLLM2}: {SMOLLM2_MEMAGENT} (issue 14 item 4) is not present, "
                         "so the recipe's plain-answer F1 reward is used")
    return None, f"{SMOLLM2} is not prepared (see bench/README.md, GPU suite)"


def _smollm2_skip() -> str:
    return "" if model_present(SMOLLM2) else (
        f"{SMOLLM2} is not prepared: run `memgym models prepare {SMOLLM2}` (on the device: "
        "both wheel parts, bench/README.md 'GPU suite')")


# ---------------------------------------------------------------------------------------------
# result parsers
# ---------------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def parse_engine(_: str, work: Path) -> dict[str, Any]:
    """tokens/s of the engine and of model.generate, their ratio and the greedy-ids check."""
    data = _read_json(work / "engine.json")
    rates = {r["mode"].split(" ")[0]: r["tokens_per_s"] for r in data.get("results", [])}
    out = {"engine_tok_s": rates.get("concurrent"), "generate_tok_s": rates.get("hf"),
           "same_greedy_ids": data.get("same_greedy_ids")}
    if out["engine_tok_s"] and out["generate_tok_s"]:
        out["engine_vs_generate"] = out["engine_tok_s"] / out["generate_tok_s"]
    return out


def parse_vllm_engine(_: str, work: Path) -> dict[str, Any]:
    """tokens/s of memgym's vLLM backend and transformers engine, their ratio, the ids check."""
    data = _read_json(work / "vllm_engine.json")
    rows = data.get("results", [])
    rates = {("vllm" if "vLLM" in r["mode"] else r["mode"].split(" ")[0]): r["tokens_per_s"]
             for r in rows}
    out = {"vllm_tok_s": rates.get("vllm"), "engine_tok_s": rates.get("concurrent"),
           "vllm_same_greedy_ids": data.get("vllm_same_greedy_ids")}
    if out["vllm_tok_s"] and out["engine_tok_s"]:
        out["vllm_vs_engine"] = out["vllm_tok_s"] / out["engine_tok_s"]
    return out


def parse_json_file(name: str) -> Callable[[str, Path], dict[str, Any]]:
    """A parser that returns the JSON file `name` the step wrote in its work folder."""
    return lambda _, work: _read_json(work / name)


def parse_trainer(_: str, work: Path) -> dict[str, Any]:
    """Both trainers' tokens/s and peak memory, and memgym / TRL."""
    data = _read_json(work / "trainer.json")
    if not data:
        return {}
    return {"memgym_tok_s": data["memgym"]["tokens_per_s"], "trl_tok_s": data["trl"]["tokens_per_s"],
            "memgym_peak_mb": data["memgym"]["peak_memory_mb"],
            "trl_peak_mb": data["trl"]["peak_memory_mb"],
            "memgym_vs_trl_tok_s": data["ratio"]["tokens_per_s"]}


def training_metrics(run_dir: Path) -> dict[str, Any]:
    """Steps done, median step time and eval reward before/after from a run's metrics.jsonl
    (read also after a timeout: the rows logged so far count)."""
    from memgym.trainer.logging import read_metrics

    path = run_dir / "metrics.jsonl"
    rows = read_metrics(path) if path.is_file() else []
    steps = [r for r in rows if r.get("step", 0) > 0 and "time/rollout_s" in r]
    evals = [(r["step"], r["eval/reward"]) for r in rows if "eval/reward" in r]
    out: dict[str, Any] = {"steps_done": max((r["step"] for r in steps), default=0)}
    if steps:
        secs = sorted(r["time/rollout_s"] + r.get("time/train_s", 0.0) for r in steps)
        out["median_step_s"] = secs[len(secs) // 2]
        rewards = [r["reward"] for r in steps if "reward" in r]
        if rewards:
            out["train_reward_first"], out["train_reward_last"] = rewards[0], rewards[-1]
    if evals:
        out["eval_reward_before"] = evals[0][1]
        out["eval_step_before"] = evals[0][0]
    if len(evals) > 1:  # one evaluation (a run killed early) has no "after"
        out["eval_reward_after"] = evals[-1][1]
        out["eval_step_after"] = evals[-1][0]
    return out


# ---------------------------------------------------------------------------------------------
# the steps
# ---------------------------------------------------------------------------------------------
def plan_engine(args, work: Path) -> Plan:
    """Engine at N concurrent episodes vs model.generate (bench_backend.py)."""
    cmd = [sys.executable, str(BENCH / "bench_backend.py"), "--greedy", "--skip-sequential",
           "--json", str(work / "engine.json")]
    if args.smoke:
        cmd += ["--n", "4", "--max-new-tokens", "8", "--prompt-words", "20"]
    else:
        cmd += ["--device", "cuda", "--dtype", "bfloat16", "--n", str(args.episodes),
                "--max-new-tokens", "256", "--prompt-words", "400"]
        if model_present(SMOLLM2):
            cmd += ["--model", SMOLLM2]
        else:  # a random model of Qwen2.5-0.5B's shape: the same arithmetic, no weights needed
            cmd += ["--hidden-size", "896", "--layers", "24", "--heads", "14"]
    note = "" if args.smoke or model_present(SMOLLM2) else \
        f"{SMOLLM2} absent: a random Qwen2.5-0.5B-shaped model instead"
    return Plan(cmd, parse_engine, note=note)


def plan_static(args, work: Path) -> Plan:
    """The static-cache compiled decode reference (this file's `--static-worker`)."""
    cmd = [sys.executable, __file__, "--static-worker", str(work / "static.json")]
    if args.smoke:
        cmd += ["--smoke"]
    cmd += ["--episodes", str(args.episodes)]
    return Plan(cmd, parse_json_file("static.json"),
                note="memgym's engine has no static-KV-cache/compiled decode option "
                     "(memgym/llm/hf.py: dynamic cache); this row is model.generate's")


def plan_trainer(args, work: Path) -> Plan:
    """memgym's trainer vs TRL (bench_trainer.py --model --lora)."""
    cmd = [sys.executable, str(BENCH / "bench_trainer.py"), "--json", str(work / "trainer.json")]
    if args.smoke:
        cmd += ["--tasks", "2", "--generations", "2", "--max-new-tokens", "4", "--steps", "1",
                "--warmup", "0"]
        return Plan(cmd, parse_trainer)
    skip = _smollm2_skip()
    cmd += ["--model", SMOLLM2, "--lora", "--tasks", "8", "--generations", "8",
            "--max-new-tokens", "128", "--steps", "5", "--warmup", "1"]
    return Plan(cmd, parse_trainer, skip=skip)


def plan_quickstart(args, work: Path) -> Plan:
    """Build the GPU quickstart's model briefly, then a few GRPO steps of its recipe."""
    model = work / "memagent-small"
    run_dir = work / "quickstart-grpo"
    if args.smoke:
        build = ["--device", "cpu", "--hidden-size", "32", "--num-layers", "1", "--num-heads", "2",
                 "--intermediate-size", "64", "--episodes", "8", "--steps", "2"]
        train = ["max_steps=1", "tasks_per_step=1", "num_generations=2", "eval_steps=1",
                 "eval_tasks=2", "env_kwargs.num_tasks=8", "env_kwargs.filler_sentences=4",
                 "rollout_batch_size=4", "dtype=float32"]
    else:
        build = ["--device", "cuda", "--hidden-size", "384", "--num-layers", "8", "--num-heads",
                 "8", "--intermediate-size", "1024", "--num-keys", "6", "--num-updates", "2",
                 "--num-distractor-facts", "6", "--filler-min", "40", "--filler-max", "80",
                 "--episodes", "2000", "--steps", "600", "--batch-size", "64",
                 "--learning-rate", "1e-3"]
        train = ["max_steps=20", "eval_steps=20", "eval_tasks=128"]
    script = (f"{sys.executable} {ROOT / 'scripts' / 'build_tiny_memagent.py'} --out {model} "
              f"{' '.join(build)} && {sys.executable} -m memgym.cli train "
              f"{ROOT / 'train' / 'tiny_memagent_gpu.yaml'} model={model} "
              f"env_kwargs.tokenizer={model} output_dir={run_dir} save_steps=0 logging_steps=1 "
              f"{' '.join(train)}")
    return Plan(["bash", "-c", script], lambda _, w: training_metrics(run_dir),
                note="shortened: 600 demonstration steps (not 6000) and 20 GRPO steps (not 300)"
                if not args.smoke else "")


def plan_grpo(args, work: Path) -> Plan:
    """GRPO of SmolLM2 on MemAgent-HotpotQA with eval before/after."""
    start, why = grpo_start_model()
    run_dir = work / "smollm2-grpo"
    if start is None:
        return Plan(None, lambda *_: {}, skip=why)
    over = [f"model={start}", f"output_dir={run_dir}", "save_steps=0", "logging_steps=1"]
    if start == SMOLLM2_MEMAGENT:
        over += ["env_kwargs.answer_format=boxed", "env_kwargs.scorer=sub_em"]
    if args.smoke:
        over += ["max_steps=1", "tasks_per_step=1", "num_generations=2", "eval_steps=1",
                 "eval_tasks=1", "max_completion_length=8", "device=cpu", "warmup_steps=0"]
    else:
        over += [f"max_steps={args.grpo_steps}", f"eval_steps={args.grpo_steps}"]
    cmd = [sys.executable, "-m", "memgym.cli", "train",
           str(ROOT / "train" / "smollm2_memagent.yaml"), *over]
    return Plan(cmd, lambda _, w: training_metrics(run_dir), note=why)


def _vllm_skip() -> str:
    """Why the vLLM steps cannot run here ("" when they can)."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return ("vLLM is not installed: pip install memgym[vllm] on a GPU, or "
                "scripts/install_vllm_cpu.sh VENV on a CPU (then run the suite with VENV's python)")
    return "" if model_present(SMOLLM2) else _smollm2_skip()


def plan_vllm_engine(args, work: Path) -> Plan:
    """memgym's vLLM backend vs its transformers engine on the same SmolLM2 requests."""
    skip = _vllm_skip()
    if skip:
        return Plan(None, lambda *_: {}, skip=skip)
    cmd = [sys.executable, str(BENCH / "bench_backend.py"), "--vllm", "--model", SMOLLM2,
           "--skip-sequential", "--json", str(work / "vllm_engine.json")]
    if args.smoke:  # CPU with vllm-cpu, float32 so the greedy ids are comparable
        cmd += ["--n", "4", "--max-new-tokens", "8", "--prompt-words", "20", "--greedy",
                "--vllm-max-model-len", "1024"]
    else:
        cmd += ["--device", "cuda", "--dtype", "bfloat16", "--n", str(args.episodes),
                "--max-new-tokens", "256", "--prompt-words", "400"]
    return Plan(cmd, parse_vllm_engine)


def plan_vllm_grpo(args, work: Path) -> Plan:
    """GRPO of SmolLM2 (LoRA) with generation_backend=vllm: rollouts in vLLM, weights synced."""
    skip = _vllm_skip()
    if skip:
        return Plan(None, lambda *_: {}, skip=skip)
    run_dir = work / "smollm2-grpo-vllm"
    over = [f"output_dir={run_dir}", "save_steps=0", "logging_steps=1", "eval_steps=0",
            "eval_tasks=0", "generation_backend=vllm"]
    if args.smoke:  # the size of tests/trainer/test_grpo_vllm_cpu.py
        over += ["max_steps=2", "tasks_per_step=1", "num_generations=2", "vllm_max_model_len=1024",
                 "env_kwargs.num_docs=2", "env_kwargs.composition=per_task_shuffle",
                 "env_kwargs.chunk_tokens=400", "max_completion_length=64", "device=cpu",
                 "warmup_steps=0"]
    else:
        over += ["max_steps=5"]
    cmd = [sys.executable, "-m", "memgym.cli", "train",
           str(ROOT / "train" / "smollm2_memagent.yaml"), *over]
    return Plan(cmd, lambda _, w: training_metrics(run_dir))


STEPS: dict[str, tuple[str, Callable[[Any, Path], Plan], float]] = {
    "engine": ("engine, 32 episodes vs model.generate", plan_engine, 90),
    "static": ("static KV cache + torch.compile decode (model.generate)", plan_static, 120),
    "trainer": ("memgym trainer vs TRL, SmolLM2 + LoRA", plan_trainer, 150),
    "quickstart": ("GPU quickstart, shortened", plan_quickstart, 120),
    "grpo": ("GRPO SmolLM2 on MemAgent-HotpotQA", plan_grpo, 180),
    "vllm_engine": ("vLLM backend vs transformers engine, SmolLM2", plan_vllm_engine, 150),
    "vllm_grpo": ("GRPO SmolLM2 with vLLM rollouts (weight sync)", plan_vllm_grpo, 180),
}
"""name -> (title, planner, default time limit in seconds on the GPU). The limits sum to 990 s;
each is a ceiling (bench/README.md 'GPU suite'); the two vLLM steps include vLLM's first-start
compile (1-3 minutes, cached in ~/.cache/vllm)."""
SMOKE_TIMEOUT = 120.0
SMOKE_TIMEOUTS = {"vllm_engine": 420.0, "vllm_grpo": 600.0}
"""On CPU the vLLM steps start vllm-cpu (a cold compile is 2-3 minutes on 2 cores)."""


# ---------------------------------------------------------------------------------------------
# the static-cache worker (runs in its own process)
# ---------------------------------------------------------------------------------------------
def static_worker(path: Path, smoke: bool, episodes: int) -> None:
    """Time `model.generate(cache_implementation="static")`: the first (compiling) call and a
    warm call, against the dynamic cache on the same batch; write the numbers to `path`."""
    import torch

    sys.path.insert(0, str(BENCH))
    from bench_backend import make_requests, run_hf_generate

    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

    device = "cpu" if smoke else "cuda"
    if not smoke and model_present(SMOLLM2):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from memgym.models import resolve_model_path

        folder = resolve_model_path(SMOLLM2)
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
        name = SMOLLM2
    else:
        tok = build_tiny_tokenizer()
        shape = {"hidden_size": 32, "num_layers": 1, "num_heads": 2} if smoke else \
            {"hidden_size": 896, "num_layers": 24, "num_heads": 14}
        model = build_tiny_model(tok, **shape)
        name = f"random qwen2 {shape}"
        if not smoke:
            model = model.to(torch.bfloat16)
    model = model.to(device).eval()
    n, new = (4, 8) if smoke else (episodes, 256)
    requests = make_requests(n, new, False, 0, prompt_words=20 if smoke else 400, greedy=True)
    out: dict[str, Any] = {"model": name, "episodes": n, "max_new_tokens": new}
    run_hf_generate(model, tok, requests[:2], device, greedy=True)  # warm-up, dynamic cache
    secs, tokens, dyn_ids = run_hf_generate(model, tok, requests, device, greedy=True)
    out["dynamic_tok_s"] = tokens / secs
    model.generation_config.cache_implementation = "static"
    first_s, tokens, _ = run_hf_generate(model, tok, requests, device, greedy=True)
    out["static_first_call_s"] = first_s
    secs, tokens, static_ids = run_hf_generate(model, tok, requests, device, greedy=True)
    out["static_compiled_tok_s"] = tokens / secs
    out["static_vs_dynamic"] = out["static_compiled_tok_s"] / out["dynamic_tok_s"]
    out["same_greedy_ids"] = static_ids == dyn_ids
    out["memgym_engine_has_static_cache"] = False
    path.write_text(json.dumps(out, indent=2))


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------
def run_step(name: str, args, work: Path, timeout: float, log) -> StepResult:
    """Plan and run one step under its time limit; never raises."""
    title, planner, _ = STEPS[name]
    result = StepResult(name, title, timeout_s=timeout)
    step_work = work / name
    step_work.mkdir(parents=True, exist_ok=True)
    try:
        plan = planner(args, step_work)
    except Exception as exc:  # noqa: BLE001 - a broken plan is a failed row, not a stopped suite
        result.status, result.detail = "failed", f"planning: {type(exc).__name__}: {exc}"
        return result
    result.detail = plan.note
    if plan.command is None:
        result.detail = plan.skip
        return result
    if plan.skip:
        result.detail = plan.skip
        return result
    log.write(f"\n===== {name}: {' '.join(plan.command)}\n")
    log.flush()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p), PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    proc = subprocess.Popen(plan.command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        result.status = "ok" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        result.status = "timeout"
    result.seconds = time.perf_counter() - start
    log.write(output)
    log.flush()
    if result.status == "failed":
        lines = [ln for ln in output.strip().splitlines() if ln.strip()]
        result.detail = f"exit {proc.returncode}: {lines[-1][:300] if lines else 'no output'}"
    elif result.status == "timeout":
        result.detail = f"killed after {timeout:.0f} s; " + (plan.note or "")
    try:
        result.metrics = {k: v for k, v in plan.parse(output, step_work).items() if v is not None}
    except Exception as exc:  # noqa: BLE001 - unreadable results are a failed row
        if result.status == "ok":
            result.status = "failed"
        result.detail += f" (results unreadable: {type(exc).__name__}: {exc})"
    return result


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def table(results: list[StepResult]) -> str:
    """The printed table: one line per step, its metrics, and what to know about it."""
    lines = [f"{'step':11s} {'status':8s} {'sec':>6s}  metrics / detail"]
    for r in results:
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in r.metrics.items())
        lines.append(f"{r.name:11s} {r.status:8s} {r.seconds:6.1f}  {metrics}")
        if r.detail:
            lines.append(f"{'':28s}{r.detail}")
    return "\n".join(lines)


def device_line(smoke: bool) -> str:
    """The GPU (or CPU) the suite ran on, in words."""
    import torch

    if not smoke and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    return f"cpu, torch {torch.__version__}"


def parse_timeouts(items: list[str]) -> dict[str, float]:
    """`NAME=SECONDS` pairs of --timeout."""
    out = {}
    for item in items:
        match = re.fullmatch(r"(\w+)=([0-9.]+)", item)
        if not match or match.group(1) not in STEPS:
            raise SystemExit(f"--timeout {item!r}: want NAME=SECONDS with NAME one of "
                             f"{', '.join(STEPS)}")
        out[match.group(1)] = float(match.group(2))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the selected steps, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default: $OUT/gpu_suite.json, else runs/gpu_suite.json)")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny models, seconds")
    parser.add_argument("--only", default=",".join(STEPS), help="comma-separated step names")
    parser.add_argument("--timeout", action="append", default=[], metavar="NAME=SECONDS")
    parser.add_argument("--episodes", type=int, default=32, help="concurrent episodes (engine)")
    parser.add_argument("--grpo-steps", type=int, default=40, help="GRPO steps on SmolLM2")
    parser.add_argument("--log", type=Path, default=None, help="steps' output (default: beside "
                                                              "the JSON, gpu_suite_steps.log)")
    parser.add_argument("--static-worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.static_worker:
        static_worker(args.static_worker, args.smoke, args.episodes)
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise SystemExit(f"--only: unknown step(s) {unknown}; the steps are {', '.join(STEPS)}")
    timeouts = parse_timeouts(args.timeout)
    out = args.out
    if out is None:
        base = Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "runs"
        out = base / "gpu_suite.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = args.log or out.with_name("gpu_suite_steps.log")
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu-suite-") as tmp, log_path.open("w") as log:
        for name in names:
            limit = timeouts.get(name, SMOKE_TIMEOUTS.get(name, SMOKE_TIMEOUT) if args.smoke
                                 else STEPS[name][2])
            results.append(run_step(name, args, Path(tmp), limit, log))
            print(f"[gpu_suite] {name}: {results[-1].status} in {results[-1].seconds:.1f} s",
                  flush=True)
    report = {"suite": "memgym gpu_suite (issue 14 item 7)", "smoke": args.smoke,
              "device": device_line(args.smoke), "steps": [asdict(r) for r in results],
              "notes": [("memgym's transformers engine has no static-KV-cache or compiled "
                         "decode option; the static row is model.generate's reference")]}
    out.write_text(json.dumps(report, indent=2, default=str))
    print(table(results))
    print(f"[gpu_suite] wrote {out} (step logs: {log_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
