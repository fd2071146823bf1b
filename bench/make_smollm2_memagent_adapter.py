"""Make the LoRA adapter of `smollm2-135m-memagent`: SmolLM2-135M-Instruct taught MemAgent's protocol.

    memgym models prepare smollm2-135m-instruct
    OMP_NUM_THREADS=1 python bench/make_smollm2_memagent_adapter.py            # one thread
    memgym models prepare smollm2-135m-memagent --force                         # merge it

Supervised fine-tuning on MemAgent-format demonstrations, each one chat turn exactly as
`agents/memagent_smollm2.yaml` sends it (MemAgent's own prompts from memgym.agents.prompts,
rendered from the env's observation, through SmolLM2's chat template by memgym's
`encode_prompt`), with a scripted teacher's reply as the target:

- memory-update turns (`memagent_update`): the teacher's memory is the question's HotpotQA
  supporting sentences seen in the chunks so far ("- Title: sentence" lines; "No relevant
  information yet." before any), or on the synthetic task `memgym.data.synthetic.oracle_memory`;
- final-answer turns (`memagent_final`): "The answer is \\boxed{ANSWER}." from the gold answer
  (HotpotQA) or `oracle_answer` (synthetic).

Data: the bundled HotpotQA sample (memgym/data/bundled, 20 dev questions, played through
`MemAgent-HotpotQA-v0` at several document counts and chunk sizes) and `MemAgent-Synthetic-v0`.
The bundled sample is the FIRST 20 rows of the 100-question file in ../shared/data, so
`bench/real_model_table.py` evaluates on rows 21-100 only (it checks that no question id, and no
question text, is shared). The loss is on the reply tokens only. LoRA (peft): rank 8, alpha 16,
on q/k/v/o projections; AdamW, lr 5e-4 (10-step warm-up, linear decay); one torch thread;
seeded (example order, LoRA init, dropout, the balancing draw).

Balance (`--keep-share`, default 0.25; 1.0 turns it off): each turn is one kind (`turn_kind`):
"add" (the reply changes the memory: the chunk held a supporting sentence / a queried fact),
"keep_empty" (nothing found yet: "No relevant information yet."), "carry" (an existing non-empty
memory copied forward unchanged) or "final". Most chunks hold no supporting sentence, so without
balancing the unchanged turns dominate, and the first adapter (128 turns drawn at random, 64
steps) learnt to write the empty reply for 61 of 63 held-out rewrites (sub_em 0.00). The
balanced set keeps every "add" and every "final" turn and draws unchanged turns up to
`--keep-share` of it, half "keep_empty" and half "carry" (so the model also learns to copy a
memory forward); `--max-examples` then caps it keeping each kind's share. The mix (available,
balanced, trained) is printed and recorded in training_log.json. Defaults: of the 567 turns
that fit 1,024 tokens (214 add, 103 keep_empty, 110 carry, 140 final) the balanced set holds
472 (214 / 59 / 59 / 140); the shipped adapter (the defaults) trained on 160 of them (`--max-examples`:
73 add, 20 keep_empty, 20 carry, 47 final; mean 490 tokens), 80 optimizer steps of 2:
763 s (~9.5 s per step, one thread, on this 2-core machine at load ~5 from other jobs),
completion loss 1.58 over the first 5 steps to 0.13 over the last 5 (noisy: 0.17-0.71
between steps 35 and 75).

The adapter (adapter_config.json, adapter_model.safetensors, ~3.7 MB), `training_log.json`
(the data counts, the loss curve, the time) and `trained_tasks.json` (a fingerprint of each
training task's question and answers, for `memgym eval`'s warning when the model is evaluated on
them; `--tasks-only` writes just this file) are written to the shipped folder
memgym/assets/smollm2-135m-memagent-lora/; its sha256 goes in memgym/models/registry.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch

import memgym  # noqa: F401  (registers the envs)
from memgym.agents.prompts import MEMAGENT_FINAL, MEMAGENT_UPDATE
from memgym.data.hotpotqa import BUNDLED_HOTPOTQA
from memgym.data.synthetic import oracle_answer, oracle_memory
from memgym.llm.base import GenerationRequest
from memgym.llm.hf import encode_prompt
from memgym.models import resolve_model_path

ADAPTER_DIR = Path(__file__).resolve().parents[1] / "memgym" / "assets" / \
    "smollm2-135m-memagent-lora"
NO_FACTS = "No relevant information yet."
HOTPOT_SETTINGS = ((10, 512, 42), (10, 768, 42), (20, 512, 1), (20, 768, 2))
"""(num_docs, chunk_tokens, composition seed) the 20 bundled questions are played at."""


def _supporting_sentences(path: Path) -> dict[str, list[tuple[str, str]]]:
    """hotpotqa id -> its supporting (title, sentence) pairs, from the raw rows."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        paragraphs = {title: sents for title, sents in row["context"]}
        out[row["_id"]] = [(title, paragraphs[title][i].strip())
                           for title, i in row["supporting_facts"]
                           if title in paragraphs and i < len(paragraphs[title])]
    return out


def _teacher_memory(facts: list[tuple[str, str]], seen: list[tuple[str, str]],
                    chunk: str) -> str:
    """Add the supporting sentences this chunk shows (whole, or their first 60 characters)."""
    for title, sentence in facts:
        if (title, sentence) not in seen and (sentence in chunk or sentence[:60] in chunk):
            seen.append((title, sentence))
    return "\n".join(f"- {t}: {s}" for t, s in seen) if seen else NO_FACTS


def turn_kind(memory: str | None, target: str) -> str:
    """What a demonstration teaches: "final" (no memory write: `memory` is None), "add" (the
    target changes the memory), "keep_empty" (nothing found yet: the empty reply) or "carry"
    (an existing non-empty memory copied forward unchanged)."""
    if memory is None:
        return "final"
    if target.strip() != memory.strip() and target.strip() != NO_FACTS:
        return "add"
    return "keep_empty" if target.strip() in ("", NO_FACTS) else "carry"


def _turn(question: str, memory: str, chunk: str | None, target: str) -> dict[str, str]:
    """One demonstration: MemAgent's prompt (update when `chunk` is given, else final)."""
    if chunk is None:
        prompt = MEMAGENT_FINAL.render(question=question, memory=memory)
    else:
        prompt = MEMAGENT_UPDATE.render(question=question, memory=memory, chunk=chunk)
    return {"prompt": prompt, "target": target,
            "kind": turn_kind(None if chunk is None else memory, target)}


def balance(demos: list[dict], keep_share: float, rng: random.Random) -> list[dict]:
    """Every "add" and "final" turn, plus unchanged-memory turns up to `keep_share` of the result.

    The unchanged turns are drawn (seeded) half "keep_empty", half "carry" (the other kind
    fills in when one runs short), so the model learns both to answer "nothing yet" and to
    copy a memory forward, without the empty reply dominating: most chunks hold no supporting
    sentence, so unbalanced demonstrations are mostly "No relevant information yet.".
    `keep_share` 1.0 keeps every turn (no balancing).
    """
    if not 0.0 <= keep_share <= 1.0:
        raise ValueError(f"keep_share={keep_share}: must be in [0, 1] (1 keeps every turn)")
    if keep_share >= 1.0:
        return list(demos)
    by_kind = {k: [d for d in demos if d["kind"] == k]
               for k in ("add", "final", "keep_empty", "carry")}
    core = by_kind["add"] + by_kind["final"]
    budget = round(keep_share / (1.0 - keep_share) * len(core))
    empty, carry = list(by_kind["keep_empty"]), list(by_kind["carry"])
    rng.shuffle(empty)
    rng.shuffle(carry)
    n_carry = min(len(carry), max(budget // 2, budget - len(empty)))
    n_empty = min(len(empty), budget - n_carry)
    return core + carry[:n_carry] + empty[:n_empty]


def stratified(demos: list[dict], n: int, rng: random.Random) -> list[dict]:
    """At most `n` of `demos`, each kind keeping its share (seeded), shuffled."""
    if len(demos) <= n:
        out = list(demos)
    else:
        kinds = sorted({d["kind"] for d in demos})
        out = []
        for i, kind in enumerate(kinds):
            group = [d for d in demos if d["kind"] == kind]
            take = n - len(out) if i == len(kinds) - 1 else round(n * len(group) / len(demos))
            out += rng.sample(group, min(take, len(group)))
    rng.shuffle(out)
    return out


def hotpotqa_demos(tokenizer_path: str) -> list[dict[str, str]]:
    """Update and final turns over the bundled HotpotQA sample, played through the env."""
    facts = _supporting_sentences(BUNDLED_HOTPOTQA)
    demos = []
    for num_docs, chunk_tokens, seed in HOTPOT_SETTINGS:
        env = gym.make("MemAgent-HotpotQA-v0", num_docs=num_docs, chunk_tokens=chunk_tokens,
                       memory_tokens=256, seed=seed, tokenizer=tokenizer_path)
        for t in range(env.unwrapped.num_tasks):
            obs, _ = env.reset(options={"task_id": t})
            task = env.unwrapped.task
            mine, seen = facts[task.metadata["hotpotqa_id"]], []
            while obs["phase"] == "update":
                memory = _teacher_memory(mine, seen, obs["chunk"])
                demos.append(_turn(obs["question"], obs["memory"], obs["chunk"], memory))
                obs, *_ = env.step(memory)
            demos.append(_turn(obs["question"], obs["memory"], None,
                               f"The answer is \\boxed{{{task.answers[0]}}}."))
        env.close()
    return demos


def synthetic_demos(episodes: int, rng: random.Random) -> list[dict[str, str]]:
    """Two update turns (one that changes the memory when there is one) and the final turn of
    each of `episodes` synthetic tasks, the teacher being the task's own oracle."""
    env = gym.make("MemAgent-Synthetic-v0", chunk_tokens=96, memory_tokens=64)
    demos = []
    for t in range(episodes):
        obs, _ = env.reset(options={"task_id": t})
        updates = []
        while obs["phase"] == "update":
            memory = oracle_memory(obs["question"], obs["memory"], obs["chunk"])
            updates.append(_turn(obs["question"], obs["memory"], obs["chunk"], memory))
            obs, *_ = env.step(memory)
        changed = [d for d in updates if d["target"] not in d["prompt"]]
        picks = rng.sample(changed, 1) if changed else []
        picks += rng.sample([d for d in updates if d not in picks], min(1, len(updates) - 1))
        demos += picks
        answer = oracle_answer(obs["question"], obs["memory"])
        demos.append(_turn(obs["question"], obs["memory"], None,
                           f"The answer is \\boxed{{{answer}}}."))
    env.close()
    return demos


def record_trained_tasks(out: Path, synthetic_episodes: int) -> Path:
    """Write out/trained_tasks.json: the fingerprints of every task the demonstrations come from
    (the bundled HotpotQA questions, the synthetic tasks 0..synthetic_episodes-1), which
    `memgym eval` reads to warn when this model is evaluated on them."""
    from memgym.models.trained_tasks import write_trained_tasks

    hotpot = gym.make("MemAgent-HotpotQA-v0").unwrapped.tasks  # every setting: same questions
    synth = gym.make("MemAgent-Synthetic-v0", chunk_tokens=96, memory_tokens=64).unwrapped.tasks
    return write_trained_tasks(out, {
        "MemAgent-HotpotQA-v0 bundled sample (memgym/data/bundled)": list(hotpot),
        f"MemAgent-Synthetic-v0 tasks 0-{synthetic_episodes - 1} (default seed)":
            [synth[t] for t in range(synthetic_episodes)]})


def _mix(demos: list[dict]) -> dict[str, int]:
    """How many demonstrations of each kind (and source), e.g. {"add": 90, "hotpotqa/add": 70}."""
    mix: dict[str, int] = {}
    for d in demos:
        for key in (d["kind"], f"{d['source']}/{d['kind']}"):
            mix[key] = mix.get(key, 0) + 1
    return dict(sorted(mix.items()))


def encode(tokenizer, demo: dict[str, str], max_len: int) -> tuple[list[int], list[int]] | None:
    """(input ids, labels) with the prompt masked (-100); None when longer than `max_len`."""
    request = GenerationRequest(messages=[{"role": "user", "content": demo["prompt"]}])
    prompt_ids, _ = encode_prompt(tokenizer, request)
    target_ids = tokenizer(demo["target"], add_special_tokens=False)["input_ids"]
    target_ids = target_ids + [tokenizer.eos_token_id]
    ids = prompt_ids + target_ids
    if len(ids) > max_len:
        return None
    return ids, [-100] * len(prompt_ids) + target_ids


def train(model, examples: list[tuple[list[int], list[int]]], *, epochs: int, lr: float,
          accumulate: int, log_every: int) -> list[dict[str, float]]:
    """AdamW over the examples one at a time (gradients summed over `accumulate`); the curve."""
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    total = epochs * len(examples) // accumulate
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / 10) * max(0.0, 1 - s / max(total, 1)))
    curve, window, step, start = [], [], 0, time.time()
    model.train()
    for epoch in range(epochs):
        for i, (ids, labels) in enumerate(examples):
            out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
            (out.loss / accumulate).backward()
            window.append(out.loss.item())
            if (i + 1) % accumulate == 0:
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optim.step()
                sched.step()
                optim.zero_grad()
                step += 1
                if step % log_every == 0:
                    point = {"step": step, "epoch": epoch, "loss": sum(window) / len(window),
                             "seconds": round(time.time() - start, 1)}
                    curve.append(point)
                    window = []
                    print(f"step {step}/{total} loss {point['loss']:.4f} "
                          f"({point['seconds']} s)", flush=True)
    return curve


def main(argv: list[str] | None = None) -> int:
    """Build the demonstrations, fine-tune the LoRA, save the adapter and its training log."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ADAPTER_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--synthetic", type=int, default=60, help="synthetic episodes")
    parser.add_argument("--max-examples", type=int, default=160,
                        help="cap on the training turns, drawn keeping each kind's share")
    parser.add_argument("--keep-share", type=float, default=0.25,
                        help="share of unchanged-memory update turns (half the empty reply, "
                             "half a memory carried forward) next to every memory-changing and "
                             "final turn; 1.0 = no balancing (the first adapter's data)")
    parser.add_argument("--max-len", type=int, default=1024)
    parser.add_argument("--mix-only", action="store_true",
                        help="print the demonstration mix and stop (no training)")
    parser.add_argument("--tasks-only", action="store_true",
                        help="only write trained_tasks.json (the training tasks' fingerprints)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--accumulate", type=int, default=2)
    args = parser.parse_args(argv)

    if args.tasks_only:
        print(record_trained_tasks(args.out, args.synthetic))
        return 0
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    base = resolve_model_path("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(base)
    started = time.time()
    hotpot, synth = hotpotqa_demos(base), synthetic_demos(args.synthetic, rng)
    fit = [dict(d, source=src, encoded=e) for src, demos in (("hotpotqa", hotpot),
                                                               ("synthetic", synth))
           for d in demos if (e := encode(tokenizer, d, args.max_len))]
    balanced = balance(fit, args.keep_share, rng)
    chosen = stratified(balanced, args.max_examples, rng)
    examples = [d["encoded"] for d in chosen]
    counts = {"hotpotqa_turns": len(hotpot), "synthetic_turns": len(synth),
              "kept_under_max_len": len(fit), "keep_share": args.keep_share,
              "after_balance": len(balanced), "trained_on": len(examples),
              "mix_available": _mix(fit), "mix_balanced": _mix(balanced),
              "mix_trained": _mix(chosen),
              "final_turns_trained": sum(1 for d in chosen if d["kind"] == "final"),
              "mean_tokens": round(sum(len(ids) for ids, _ in examples) / len(examples), 1)}
    print(json.dumps(counts), flush=True)
    if args.mix_only:
        return 0

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05,
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                        task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    curve = train(model, examples, epochs=args.epochs, lr=args.lr, accumulate=args.accumulate,
                  log_every=5)
    args.out.mkdir(parents=True, exist_ok=True)
    model.peft_config["default"].base_model_name_or_path = "smollm2-135m-instruct"  # not a path
    model.save_pretrained(args.out)
    for extra in ("README.md",):  # peft writes a model-card stub; the log below says it all
        (args.out / extra).unlink(missing_ok=True)
    weights = args.out / "adapter_model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    log = {"base": "smollm2-135m-instruct", "seed": args.seed, "threads": args.threads,
           "lora": {"r": args.rank, "alpha": 2 * args.rank, "dropout": 0.05,
                    "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]},
           "lr": args.lr, "epochs": args.epochs, "accumulate": args.accumulate,
           "hotpotqa_settings": [list(s) for s in HOTPOT_SETTINGS],
           "data": counts, "loss_curve": curve, "seconds": round(time.time() - started, 1),
           "adapter_sha256": digest, "torch": torch.__version__}
    (args.out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")
    record_trained_tasks(args.out, args.synthetic)
    print(f"adapter at {args.out} ({weights.stat().st_size / 1e6:.1f} MB), sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
