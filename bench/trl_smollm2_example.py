"""TRL's own GRPOTrainer on a memgym env: SmolLM2-135M-Instruct answers HotpotQA from a memory.

    export MEMGYM_CACHE=...           # where `memgym models prepare smollm2-135m-instruct` put it
    OMP_NUM_THREADS=1 python bench/trl_smollm2_example.py --max-steps 2

The env is `MemAgent-HotpotQA-v0` (real HotpotQA questions, each with its 10 paragraphs and
distractors to `--num-docs` documents, read in chunks of `--chunk-tokens` SmolLM2 tokens).
`memgym.trainer.trl_adapter` turns it into a TRL dataset: a fixed prefix policy writes the
memory while the chunks stream past (the sentences sharing most words with the question, at
most `--memory-words` words), and TRL's `GRPOTrainer` trains SmolLM2 (LoRA) on the final call,
the answer. The adapter replays each task's prefix once and scores every completion on a copy.

SmolLM2 never writes MemAgent's `\\boxed{}`, so the env reads the answer in "plain" format and
scores it with HotpotQA's lenient `sub_em` (the gold answer appears in the completion, or the
reverse), and the prompt asks for a short answer. That gives the group of `--generations`
completions reward variance often enough for GRPO to have a gradient.

Prints, per step, TRL's reward mean and std (across the batch), loss, grad norm and time.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hotpotqa_distractor_sample100.jsonl"


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


def keyword_memory(max_words: int):
    """A prefix policy: keep the sentences of memory + chunk that share most words with the
    question, in reading order, within `max_words` words."""
    def policy(obs) -> str:
        old = "" if obs["memory"] == "No previous memory" else obs["memory"]
        sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", f"{old}\n{obs['chunk']}")
                     if s.strip()]
        q = _words(obs["question"])
        ranked = sorted(range(len(sentences)),
                        key=lambda i: (-len(q & _words(sentences[i])), i))
        keep, used = [], 0
        for i in ranked:
            n = len(sentences[i].split())
            if used + n <= max_words:
                keep.append(i)
                used += n
        return " ".join(sentences[i] for i in sorted(keep))
    return policy


def short_answer_prompt(obs) -> str:
    """The final prompt: the question and the memory, asking for a short answer."""
    return (f"Read the notes and answer the question with a few words only.\n\n"
            f"Notes: {obs['memory']}\n\nQuestion: {obs['question']}\nAnswer:")


def main(argv: list[str] | None = None) -> int:
    """Build the adapter, run TRL's GRPOTrainer, print one line per step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default=str(DATA), help="HotpotQA JSON/JSONL (default: the "
                        "100 questions in ../shared/data; 'bundled' for memgym's sample)")
    parser.add_argument("--num-docs", type=int, default=10)
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--memory-words", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=16, help="questions in the dataset")
    parser.add_argument("--generations", type=int, default=8, help="completions per question")
    parser.add_argument("--prompts-per-step", type=int, default=1)
    parser.add_argument("--max-completion-length", type=int, default=24)
    parser.add_argument("--max-steps", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="write the log history here")
    args = parser.parse_args(argv)

    import torch
    import trl
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    from memgym.models import resolve_model_path
    from memgym.trainer.trl_adapter import TRLEnvAdapter

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    path = resolve_model_path(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    env_kwargs = {"data_path": None if args.data == "bundled" else args.data,
                  "num_docs": args.num_docs, "limit": args.tasks, "tokenizer": tok,
                  "chunk_tokens": args.chunk_tokens, "memory_tokens": 2 * args.memory_words,
                  "answer_format": "plain", "scorer": "sub_em"}
    t0 = time.perf_counter()
    adapter = TRLEnvAdapter("MemAgent-HotpotQA-v0", env_kwargs,
                            prefix_policy=keyword_memory(args.memory_words),
                            render=short_answer_prompt)
    dataset = adapter.dataset()
    print(f"dataset: {len(dataset)} prompts in {time.perf_counter() - t0:.1f} s; "
          f"reward functions {adapter.components}, weights {adapter.reward_weights}")

    step_t: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            step_t.append(time.perf_counter() - self.t0)

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    cfg = trl.GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-smollm2-"), use_cpu=True, bf16=False,
        max_steps=args.max_steps, num_generations=args.generations,
        per_device_train_batch_size=args.generations * args.prompts_per_step,
        gradient_accumulation_steps=1, max_completion_length=args.max_completion_length,
        learning_rate=args.learning_rate, reward_weights=adapter.reward_weights,
        temperature=1.0, report_to=[], logging_steps=1, save_strategy="no",
        activation_checkpointing=False, seed=0)
    trainer = trl.GRPOTrainer(
        model=model, processing_class=tok, reward_funcs=adapter.reward_funcs,
        train_dataset=dataset, args=cfg, callbacks=[StepTimer()],
        peft_config=LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                               target_modules="all-linear", task_type="CAUSAL_LM"))
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    rows = [h for h in trainer.state.log_history if "reward" in h]
    for i, h in enumerate(rows):
        print(f"step {i + 1}: reward {h['reward']:.3f} reward_std {h['reward_std']:.3f} "
              f"accuracy {h.get('rewards/accuracy/mean', float('nan')):.3f} "
              f"loss {h['loss']:.4f} grad_norm {h.get('grad_norm', float('nan')):.3f} "
              f"time {step_t[i] if i < len(step_t) else float('nan'):.1f} s")
    print(f"train: {len(rows)} steps in {total:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(trainer.state.log_history, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
