"""The transformers backend: many concurrent episodes, one batched KV-cached decoding loop.

Agents `await backend.generate(request)` from many coroutines (one per episode). Each request is
handed to a single engine thread that runs the model, so calls from all episodes are decoded
together, one forward pass per step for the whole batch:

- **Continuous batching.** Requests that arrive while a batch is decoding are prefilled and
  merged into it at the next step (their KV cache is left-padded to the batch's length), and a
  finished row leaves at once, so one long completion never holds the others back.
- **Left padding done right.** Each row carries its own attention mask and position ids
  (positions count the row's real tokens only), so a prompt decodes to the same tokens alone or in
  any batch: with temperature 0, batched and one-by-one completions are identical.
- **Per-row sampling.** Temperature, top-k, top-p, max_new_tokens, stop strings and seed are
  per request; rows with different settings share a batch. Tokens are drawn from the processed
  distribution (temperature, then top-k, then top-p), but a row's logprobs are those of the
  temperature-scaled *full* softmax (the raw logits when greedy): the distribution the trainer's
  forward computes, so with identical weights the truncated importance weight is exactly 1.
- **Shared weights.** Given a model object, the backend uses it in place (never a copy), so a
  trainer's updates are seen by the next generation. Do not step the optimizer while a
  generation is running.
- **Error isolation.** A request that cannot be templated, is too long, or whose forward pass
  fails gets `Completion(finish_reason="error", error=...)`; other requests go on.

Merging rows into a running batch needs the plain `DynamicLayer` KV cache of transformers 5
(every standard full-attention decoder: Qwen2/2.5/3, Llama, Mistral, ...). Other caches
(sliding-window, linear-attention, older transformers) still batch, but a new request waits for
the running batch to finish.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memgym._omp import wait_policy_warning
from memgym.errors import BackendError, ConfigError
from memgym.llm import set_torch_threads
from memgym.llm.base import Completion, GenerationRequest, cut_at_stop, strip_think

__all__ = ["TransformersBackend", "encode_prompt", "sample_tokens"]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# One request's life inside the engine
# ----------------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Job:
    request: GenerationRequest
    deliver: Callable[[Completion], None]
    cancelled: Callable[[], bool]
    submitted: float = field(default_factory=time.perf_counter)
    prompt_ids: list[int] = field(default_factory=list)
    prompt_text: str = ""
    max_new: int = 0
    generator: Any = None  # torch.Generator for seeded requests
    out_ids: list[int] = field(default_factory=list)
    out_logprobs: list[float] = field(default_factory=list)
    stop_window: int = 0  # how many trailing tokens can contain a stop string


@dataclass
class _Batch:
    """The rows being decoded: their KV cache and what the next forward pass feeds them."""

    jobs: list[_Job]
    cache: Any  # transformers Cache, batch dimension = len(jobs)
    mask: Any  # [B, T] attention mask over the cached tokens (0 = left padding)
    next_tokens: Any  # [B] last sampled token of each row, not yet in the cache
    lengths: Any  # [B] real tokens in the cache per row = position id of next_tokens
    mergeable: bool  # the cache can be left-padded and concatenated with another batch


def _completion_error(job: _Job, message: str) -> Completion:
    return Completion(
        text="",
        prompt_ids=list(job.prompt_ids),
        finish_reason="error",
        error=message,
        latency_s=time.perf_counter() - job.submitted,
        prompt_text=job.prompt_text,
    )


# ----------------------------------------------------------------------------------------------
# Sampling: per-row temperature / top-k / top-p over a [B, V] logits tensor
# ----------------------------------------------------------------------------------------------
def sample_tokens(
    logits: Any,
    temperature: Any,
    top_k: Any,
    top_p: Any,
    generators: Sequence[Any | None],
) -> tuple[Any, Any]:
    """Sample one token per row and return (tokens [B], sampler logprobs [B]).

    `temperature`, `top_k`, `top_p` are [B] tensors on the logits' device; `generators` holds a
    CPU `torch.Generator` for each seeded row (None for the others).

    Rows with temperature 0 are greedy: argmax of the raw logits, logprob from their
    log-softmax. Other rows apply temperature, then top-k, then top-p (as transformers'
    warpers do) and sample from the resulting distribution (with the row's generator when
    given). The reported logprob is the token's under the temperature-scaled full softmax, not
    the renormalised nucleus: that is what `memgym.trainer.loss.completion_logprobs` computes,
    so the importance weight exp(trainer - sampler) measures numerics only (a nucleus
    logprob would be off by log(kept mass), biasing the weight down by the factor top_p).
    """
    import torch

    logits = logits.float()  # [B, V]
    greedy = temperature <= 0  # [B]
    if bool(greedy.all()):
        logp = torch.log_softmax(logits, dim=-1)
        tokens = logits.argmax(dim=-1)
        return tokens, logp.gather(1, tokens[:, None]).squeeze(1)

    vocab = logits.shape[-1]
    scaled = logits / torch.where(greedy, 1.0, temperature)[:, None]
    full_logp = torch.log_softmax(scaled, dim=-1)  # [B, V] what the trainer computes
    k = torch.where(greedy | (top_k <= 0), vocab, top_k.clamp(max=vocab))  # [B]
    if bool((k < vocab).any()):
        kth = scaled.topk(int(k.max()), dim=-1).values.gather(1, (k - 1)[:, None])  # [B, 1]
        scaled = scaled.masked_fill(scaled < kth, -math.inf)
    p = torch.where(greedy, 1.0, top_p)  # [B]
    if bool((p < 1).any()):
        sorted_logits, order = scaled.sort(dim=-1, descending=True)  # [B, V]
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs
        drop_sorted = mass_before >= p[:, None]  # the most likely token always stays
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
        scaled = scaled.masked_fill(drop, -math.inf)
    logp = torch.log_softmax(scaled, dim=-1)  # [B, V]

    # Inverse-CDF sampling for all rows at once. Each row's uniform comes from its own CPU
    # generator when seeded (so a seeded row samples the same tokens alone or in any batch, on
    # any device) or else from torch's global RNG; no per-row kernel launches.
    uniform = torch.rand(logits.shape[0])  # [B], CPU
    for i, generator in enumerate(generators):
        if generator is not None:
            uniform[i] = torch.rand((), generator=generator)
    cdf = logp.exp().cumsum(dim=-1)  # [B, V]
    target = (1.0 - uniform).to(cdf.device)[:, None] * cdf[:, -1:]  # in (0, total]: p=0 never hit
    sampled = torch.searchsorted(cdf, target).squeeze(1).clamp(max=vocab - 1)
    tokens = torch.where(greedy, logits.argmax(dim=-1), sampled)
    return tokens, full_logp.gather(1, tokens[:, None]).squeeze(1)


# ----------------------------------------------------------------------------------------------
# KV cache surgery for continuous batching
# ----------------------------------------------------------------------------------------------
def _plain_layers(cache: Any) -> list[Any] | None:
    """The cache's layers if all are plain DynamicLayers (mergeable), else None."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return None
    layers = getattr(cache, "layers", None)
    if not layers or not all(
        type(layer) is DynamicLayer and getattr(layer, "is_initialized", False) for layer in layers
    ):
        return None
    return list(layers)


def _left_pad_cache(layers: list[Any], pad: int) -> None:
    import torch

    for layer in layers:
        k, v = layer.keys, layer.values  # [B, H, T, D]
        zk = k.new_zeros(k.shape[0], k.shape[1], pad, k.shape[3])
        zv = v.new_zeros(v.shape[0], v.shape[1], pad, v.shape[3])
        layer.keys, layer.values = torch.cat([zk, k], dim=2), torch.cat([zv, v], dim=2)


def _merge(a: _Batch, b: _Batch) -> _Batch:
    """Concatenate two mergeable batches along the batch dimension, left-padding the shorter."""
    import torch

    la, lb = _plain_layers(a.cache), _plain_layers(b.cache)
    assert la is not None and lb is not None and len(la) == len(lb)
    ta, tb = a.mask.shape[1], b.mask.shape[1]
    if ta < tb:
        _left_pad_cache(la, tb - ta)
        a.mask = torch.cat([a.mask.new_zeros(a.mask.shape[0], tb - ta), a.mask], dim=1)
    elif tb < ta:
        _left_pad_cache(lb, ta - tb)
        b.mask = torch.cat([b.mask.new_zeros(b.mask.shape[0], ta - tb), b.mask], dim=1)
    for x, y in zip(la, lb):
        x.keys = torch.cat([x.keys, y.keys], dim=0)
        x.values = torch.cat([x.values, y.values], dim=0)
    a.jobs.extend(b.jobs)
    a.mask = torch.cat([a.mask, b.mask], dim=0)
    a.next_tokens = torch.cat([a.next_tokens, b.next_tokens])
    a.lengths = torch.cat([a.lengths, b.lengths])
    return a


def _trim_left(batch: _Batch) -> None:
    """Drop leading cache columns that are padding in every row (left by rows that finished)."""
    used = batch.mask.any(dim=0)  # [T]
    first = int(used.long().argmax())
    if first == 0:
        return
    layers = _plain_layers(batch.cache)
    if layers is None:
        return
    for layer in layers:
        layer.keys = layer.keys[:, :, first:]
        layer.values = layer.values[:, :, first:]
    batch.mask = batch.mask[:, first:]


# ----------------------------------------------------------------------------------------------
# The engine: a queue of jobs and the decoding loop, run by one thread
# ----------------------------------------------------------------------------------------------
class _Engine:
    """Owns the running batch. `step()` admits waiting jobs and decodes one token for all rows."""

    def __init__(self, backend: TransformersBackend):
        import torch

        self.b = backend
        self.torch = torch
        self.pending: deque[_Job] = deque()
        self.batch: _Batch | None = None
        self.cv = threading.Condition()
        self.closed = False
        self.thread: threading.Thread | None = None
        self._was_training: bool | None = None
        # Row-parameter tensors, rebuilt when the batch's membership changes.
        self._params_for: list[_Job] | None = None
        self._params: tuple[Any, Any, Any] | None = None

    # -- queue ----------------------------------------------------------------------------------
    def submit(self, job: _Job) -> None:
        with self.cv:
            if self.closed:
                job.deliver(_completion_error(job, "TransformersBackend is closed"))
                return
            self.pending.append(job)
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="memgym-transformers-engine", daemon=True
                )
                self.thread.start()
            self.cv.notify()

    def close(self) -> None:
        with self.cv:
            self.closed = True
            self.cv.notify()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=60)

    def _run(self) -> None:
        wait_s = self.b.batch_wait_ms / 1000.0
        while True:
            with self.cv:
                while not self.pending and self.batch is None and not self.closed:
                    self._restore_mode()
                    self.cv.wait()
                if self.closed:
                    self._fail_all("TransformersBackend was closed before this request finished")
                    self._restore_mode()
                    return
                if self.batch is None and wait_s > 0:
                    # Idle engine, first request: give concurrent episodes a moment to join.
                    deadline = self.pending[0].submitted + wait_s
                    while len(self.pending) < self.b.max_batch_size and not self.closed:
                        left = deadline - time.perf_counter()
                        if left <= 0:
                            break
                        self.cv.wait(left)
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - the engine must survive anything
                self._fail_all(f"transformers engine failed: {type(exc).__name__}: {exc}")

    def _fail_all(self, message: str) -> None:
        with self.cv:  # re-entrant: also called with the lock held
            jobs = list(self.pending) + (self.batch.jobs if self.batch is not None else [])
            self.pending.clear()
            self.batch = None
        for job in jobs:
            job.deliver(_completion_error(job, message))

    # -- model mode -----------------------------------------------------------------------------
    def _enter_eval(self) -> None:
        model = self.b.model
        if not self.b.manage_mode:  # the caller (a trainer) owns train/eval mode
            return
        if self._was_training is None:
            self._was_training = model.training
            if model.training:
                model.eval()  # no dropout, and gradient checkpointing (train-only) keeps the cache

    def _restore_mode(self) -> None:
        if self._was_training:
            self.b.model.train()
        self._was_training = None

    # -- one iteration --------------------------------------------------------------------------
    def step(self) -> bool:
        """Admit waiting jobs, then decode one token for every running row. True if it worked."""
        admitted = self._take_admissible()
        if not admitted and self.batch is None:
            return False
        self._enter_eval()
        with self.torch.no_grad():
            ready = [job for job in admitted if self._prepare(job)]
            for group in self._prefill_groups(ready):
                if self.batch is not None and not self.batch.mergeable:
                    # This model's cache cannot take new rows: they wait for the next batch.
                    with self.cv:
                        self.pending.extendleft(reversed(group))
                    continue
                self._prefill(group)
            if self.batch is not None:
                try:
                    self._decode_step()
                except Exception as exc:  # noqa: BLE001 - e.g. out of memory: fail this batch only
                    jobs, self.batch = self.batch.jobs, None
                    for job in jobs:
                        job.deliver(
                            _completion_error(job, f"decoding failed: {type(exc).__name__}: {exc}")
                        )
        return True

    def _take_admissible(self) -> list[_Job]:
        with self.cv:
            if not self.pending:
                return []
            if self.batch is not None:
                if not self.batch.mergeable:
                    return []
                free = self.b.max_batch_size - len(self.batch.jobs)
                oldest_wait = time.perf_counter() - self.pending[0].submitted
                # Joining a running batch costs a prefill pass: wait until a few requests have
                # queued up or the oldest has waited batch_wait_ms, so prefills are batched too.
                if free <= 0 or (
                    len(self.pending) < min(free, self.b.min_join)
                    and oldest_wait * 1000 < self.b.batch_wait_ms
                ):
                    return []
            else:
                free = self.b.max_batch_size
            return [self.pending.popleft() for _ in range(min(free, len(self.pending)))]

    def _prepare(self, job: _Job) -> bool:
        """Tokenise and validate a job; deliver an error (and return False) if it cannot run."""
        if job.cancelled():
            return False
        try:
            job.prompt_ids, job.prompt_text = self.b._encode_prompt(job.request)
            s = job.request.sampling
            for name, bad in (
                ("temperature", not s.temperature >= 0),
                ("top_p", not 0 < s.top_p <= 1),
                ("top_k", s.top_k < 0),
            ):
                if bad:
                    raise ConfigError(
                        f"SamplingParams.{name}={getattr(s, name)!r} is out of range "
                        "(temperature >= 0, 0 < top_p <= 1, top_k >= 0)"
                    )
            if not job.prompt_ids:
                raise ConfigError("the prompt is empty (no tokens); give a non-empty prompt")
            room = self.b.max_model_len - len(job.prompt_ids)
            if room <= 0:
                raise ConfigError(
                    f"the prompt has {len(job.prompt_ids)} tokens, at or over max_model_len="
                    f"{self.b.max_model_len}; shorten it or raise max_model_len"
                )
            job.max_new = min(s.max_new_tokens, room)
            if s.seed is not None and s.temperature > 0:
                job.generator = self.torch.Generator().manual_seed(s.seed)  # CPU: see sample_tokens
            if s.stop:
                # A stop string of n characters spans at most 4n byte-level tokens.
                job.stop_window = 4 * max(len(x) for x in s.stop) + 4
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the others
            job.deliver(_completion_error(job, f"{type(exc).__name__}: {exc}"))
            return False
        if job.max_new <= 0:
            job.deliver(self.b._finish(job, "length"))
            return False
        return True

    def _prefill_groups(self, jobs: list[_Job]) -> list[list[_Job]]:
        """Split jobs into prefill passes of at most max_prefill_tokens padded tokens each."""
        jobs = sorted(jobs, key=lambda j: len(j.prompt_ids))  # similar lengths, less padding
        groups: list[list[_Job]] = []
        for job in jobs:
            if groups:
                group = groups[-1]
                if (len(group) + 1) * len(job.prompt_ids) <= self.b.max_prefill_tokens:
                    group.append(job)
                    continue
            groups.append([job])
        return groups

    def _prefill(self, jobs: list[_Job]) -> None:
        torch = self.torch
        device = self.b.device
        try:
            width = max(len(j.prompt_ids) for j in jobs)
            ids = torch.full((len(jobs), width), self.b.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(jobs), width), dtype=torch.long)
            for i, job in enumerate(jobs):
                n = len(job.prompt_ids)
                ids[i, width - n :] = torch.tensor(job.prompt_ids)
                mask[i, width - n :] = 1
            ids, mask = ids.to(device), mask.to(device)
            positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # [b, T] real-token positions
            out = self.b._forward(ids, mask, positions, None)
            cache = self.b._output_cache(out)
            part = _Batch(
                jobs=list(jobs),
                cache=cache,
                mask=mask,
                next_tokens=torch.zeros(len(jobs), dtype=torch.long, device=device),
                lengths=mask.sum(dim=1),
                mergeable=_plain_layers(cache) is not None,
            )
            self._sample_and_retire(part, out.logits[:, -1, :])
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory on a long prompt
            for job in jobs:
                job.deliver(_completion_error(job, f"prefill failed: {type(exc).__name__}: {exc}"))
            return
        if not part.jobs:
            return
        if self.batch is None:
            self.batch = part
        elif self.batch.mergeable and part.mergeable:
            self.batch = _merge(self.batch, part)
        else:  # cannot happen: non-mergeable batches admit nothing while running
            raise BackendError("internal: tried to merge a non-mergeable KV cache")

    def _decode_step(self) -> None:
        torch = self.torch
        batch = self.batch
        assert batch is not None
        mask = torch.cat([batch.mask, batch.mask.new_ones(batch.mask.shape[0], 1)], dim=1)
        out = self.b._forward(batch.next_tokens[:, None], mask, batch.lengths[:, None], batch.cache)
        batch.cache = self.b._output_cache(out) or batch.cache
        batch.mask = mask
        batch.lengths = batch.lengths + 1
        self._sample_and_retire(batch, out.logits[:, -1, :])
        if not batch.jobs:
            self.batch = None

    def _row_params(self, jobs: list[_Job]) -> tuple[Any, Any, Any]:
        if self._params_for != jobs or self._params is None:
            torch, device = self.torch, self.b.device
            s = [j.request.sampling for j in jobs]
            self._params = (
                torch.tensor([x.temperature for x in s], dtype=torch.float32, device=device),
                torch.tensor([x.top_k for x in s], dtype=torch.long, device=device),
                torch.tensor([x.top_p for x in s], dtype=torch.float32, device=device),
            )
            self._params_for = list(jobs)
        return self._params

    def _sample_and_retire(self, batch: _Batch, logits: Any) -> None:
        """Sample the next token of every row, record it, and remove rows that finished."""
        temperature, top_k, top_p = self._row_params(batch.jobs)
        tokens, logprobs = sample_tokens(
            logits, temperature, top_k, top_p, [j.generator for j in batch.jobs]
        )
        batch.next_tokens = tokens
        keep: list[int] = []
        for i, (job, tok, lp) in enumerate(zip(batch.jobs, tokens.tolist(), logprobs.tolist())):
            if job.cancelled():
                continue
            job.out_ids.append(tok)
            job.out_logprobs.append(lp)
            if tok in self.b.eos_token_ids or self.b._hit_stop(job):
                job.deliver(self.b._finish(job, "stop"))
            elif len(job.out_ids) >= job.max_new:
                job.deliver(self.b._finish(job, "length"))
            else:
                keep.append(i)
        if len(keep) == len(batch.jobs):
            return
        self._params_for = None
        index = self.torch.tensor(keep, dtype=self.torch.long, device=batch.mask.device)
        batch.jobs = [batch.jobs[i] for i in keep]
        if not keep:
            return
        batch.cache.batch_select_indices(index)
        batch.mask = batch.mask[index]
        batch.next_tokens = batch.next_tokens[index]
        batch.lengths = batch.lengths[index]
        if batch.mergeable:
            _trim_left(batch)


# ----------------------------------------------------------------------------------------------
# The backend
# ----------------------------------------------------------------------------------------------
class TransformersBackend:
    """Batched generation with a transformers causal LM, token ids and sampler logprobs included.

    Args:
        model: a model object (used in place, shared with a trainer: never copied or moved
            unless `device` is given) or a hub id / local path loaded with
            `AutoModelForCausalLM`.
        tokenizer: the tokenizer (object, hub id or path); defaults to the model's path.
        device: where to run; defaults to the model's device ("cuda" when loading by name and
            a GPU is present, else "cpu"). Given with a model object, the model is moved there.
        dtype: weights dtype when loading by name ("auto", "bfloat16", torch.float32, ...).
        max_batch_size: most rows decoded together.
        batch_wait_ms: how long an idle engine waits for concurrent requests to join the first
            one, and the longest a request waits to join a running batch.
        min_join: queued requests that make the engine prefill them into a running batch
            without waiting `batch_wait_ms`.
        max_prefill_tokens: padded tokens per prefill pass (bounds prefill activation memory).
        max_model_len: longest prompt + completion (default: the config's
            `max_position_embeddings`).
        strip_think: remove `<think>...</think>` from the returned text (never from the ids).
        chat_template_kwargs: extra variables for the chat template (e.g.
            `{"enable_thinking": False}` for Qwen3).
        stop_token_ids: token ids that end a completion (default: the generation config's and
            the tokenizer's EOS ids).
        trust_remote_code: passed to `from_pretrained` when loading by name.
        manage_mode: switch a model in train mode to eval mode while decoding and back when
            idle. A trainer that shares the model passes False and sets the mode itself: the
            engine thread then never calls `train()`/`eval()`, so it cannot flip the mode
            while the trainer computes old or reference log-probs on the main thread.
        threads: torch CPU threads for a model on the CPU (a number or "auto"; see
            `memgym.llm.set_torch_threads`). torch's setting is process-wide, so this sets it
            for everything in the process. None (the default) leaves it as it is; `memgym
            eval`'s `--threads` and the trainer's `torch_threads` set it before.

    Completions carry `prompt_ids` (the exact ids the model saw), `completion_ids` (including the
    EOS token that ended them; for a stop string, up to the token that completed it while the
    text is cut before the stop string) and one sampler logprob per completion id.
    """

    name = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any | None = None,
        *,
        device: str | Any | None = None,
        dtype: str | Any | None = None,
        max_batch_size: int = 64,
        batch_wait_ms: float = 5.0,
        min_join: int = 4,
        max_prefill_tokens: int = 32768,
        max_model_len: int | None = None,
        strip_think: bool = False,
        chat_template_kwargs: dict[str, Any] | None = None,
        stop_token_ids: Sequence[int] | None = None,
        trust_remote_code: bool = False,
        manage_mode: bool = True,
        threads: int | str | None = None,
    ):
        import torch

        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size={max_batch_size}: must be at least 1")
        if max_prefill_tokens < 1:
            raise ConfigError(f"max_prefill_tokens={max_prefill_tokens}: must be at least 1")
        if isinstance(model, str):
            model, tokenizer, device = _load(model, tokenizer, device, dtype, trust_remote_code)
        else:
            tokenizer = _adopt(model, tokenizer, device, dtype, trust_remote_code)
        self.model = model
        self.tokenizer = tokenizer
        self.manage_mode = manage_mode
        self.device = next(model.parameters()).device
        if threads is not None:
            set_torch_threads(threads, device=self.device, setting="threads")
        if self.device.type == "cpu" and (hint := wait_policy_warning(torch.get_num_threads())):
            logger.warning(hint)
        self.max_batch_size = max_batch_size
        self.batch_wait_ms = batch_wait_ms
        self.min_join = max(1, min_join)
        self.max_prefill_tokens = max_prefill_tokens
        self.strip_think = strip_think
        self.chat_template_kwargs = dict(chat_template_kwargs or {})

        self.max_model_len = _max_model_len(model, max_model_len)
        if stop_token_ids is None:
            stop_token_ids = _default_stop_ids(model, tokenizer)
        self.eos_token_ids = frozenset(int(t) for t in stop_token_ids)
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else min(self.eos_token_ids, default=0))
        self._cache_kw, self._keep_kw = _forward_keywords(model)
        self._torch = torch
        self._engine = _Engine(self)

    # -- model calls (run on the engine thread) ---------------------------------------------------
    def _forward(self, ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
        kwargs = {self._cache_kw: cache, "use_cache": True}
        if self._keep_kw is not None:
            kwargs[self._keep_kw] = 1  # only the last position's logits: [B, 1, V], not [B, T, V]
        return self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs)

    def _output_cache(self, out: Any) -> Any:
        cache = getattr(out, "cache", None)
        return cache if cache is not None else getattr(out, "past_key_values", None)

    # -- text <-> ids -----------------------------------------------------------------------------
    def _encode_prompt(self, request: GenerationRequest) -> tuple[list[int], str]:
        return encode_prompt(self.tokenizer, request, self.chat_template_kwargs)

    def _hit_stop(self, job: _Job) -> bool:
        if not job.stop_window:
            return False
        tail = self.tokenizer.decode(job.out_ids[-job.stop_window :], skip_special_tokens=True)
        return any(s and s in tail for s in job.request.sampling.stop)

    def _finish(self, job: _Job, reason: str) -> Completion:
        text = self.tokenizer.decode(job.out_ids, skip_special_tokens=True)
        if job.request.sampling.stop:
            text, hit = cut_at_stop(text, job.request.sampling.stop)
            reason = "stop" if hit else reason
        if self.strip_think:
            text = strip_think(text)
        return Completion(
            text=text,
            prompt_ids=list(job.prompt_ids),
            completion_ids=list(job.out_ids),
            logprobs=list(job.out_logprobs),
            finish_reason=reason,
            latency_s=time.perf_counter() - job.submitted,
            prompt_text=job.prompt_text,
        )

    # -- public API -------------------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> Completion:
        """Complete one request; concurrent calls are decoded together in one batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()

        def deliver(completion: Completion) -> None:
            try:
                loop.call_soon_threadsafe(_resolve, future, completion)
            except RuntimeError:  # the caller's event loop is gone: nobody is waiting
                pass

        self._engine.submit(_Job(request, deliver, future.cancelled))
        return await future

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Complete many requests together (blocking) and return them in order."""
        futures: list[concurrent.futures.Future] = [concurrent.futures.Future() for _ in requests]
        for request, fut in zip(requests, futures):
            self._engine.submit(_Job(request, functools.partial(_settle, fut), lambda: False))
        return [fut.result() for fut in futures]

    def close(self) -> None:
        """Stop the engine thread; waiting requests get an error completion."""
        self._engine.close()

    def __enter__(self) -> TransformersBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def encode_prompt(
    tokenizer: Any, request: GenerationRequest, chat_template_kwargs: dict[str, Any] | None = None
) -> tuple[list[int], str]:
    """The prompt token ids and text a model sees for `request` (shared by local backends).

    `prompt_ids` are used verbatim; chat `messages` go through the tokenizer's chat template
    with the generation prompt added (no extra special tokens: the template has them all); a
    raw `prompt` is tokenised with the tokenizer's usual special tokens (e.g. BOS).
    """
    if request.prompt_ids is not None:
        ids = [int(t) for t in request.prompt_ids]
        return ids, tokenizer.decode(ids, skip_special_tokens=False)
    if request.messages is not None:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                f"the tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template; "
                "send prompt= text instead of messages=, or set tokenizer.chat_template"
            )
        text = tokenizer.apply_chat_template(
            [dict(m) for m in request.messages],
            add_generation_prompt=True,
            tokenize=False,
            **(chat_template_kwargs or {}),
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]), text
    if request.prompt is not None:
        return list(tokenizer(request.prompt)["input_ids"]), request.prompt
    raise ConfigError("GenerationRequest has no messages, prompt or prompt_ids; set one")


def _resolve(future: asyncio.Future, completion: Completion) -> None:
    if not future.done():
        future.set_result(completion)


def _settle(future: concurrent.futures.Future, completion: Completion) -> None:
    if not future.done():  # a request is answered once, even if an error path repeats it
        future.set_result(completion)


def _adopt(model: Any, tokenizer: Any, device: Any, dtype: Any, trust_remote_code: bool) -> Any:
    """Take a model object as is (moved to `device` if given); returns its tokenizer object."""
    if dtype is not None:
        raise ConfigError(
            "dtype= applies only when the model is loaded by name; a model object is "
            "used as is (it is shared with the trainer). Cast it before passing it."
        )
    if tokenizer is None:
        path = getattr(model, "name_or_path", None) or getattr(
            getattr(model, "config", None), "_name_or_path", None
        )
        if not path:
            raise ConfigError(
                "TransformersBackend(model=<object>) needs tokenizer=: the model has no "
                "name_or_path to load one from"
            )
        tokenizer = path
    if isinstance(tokenizer, str):
        tokenizer = _load_tokenizer(tokenizer, trust_remote_code)
    if device is not None:
        model.to(device)  # in place: the trainer's model moves with it, no copy
    return tokenizer


def _max_model_len(model: Any, max_model_len: int | None) -> int:
    """The longest prompt + completion: `max_model_len`, else the config's position limit."""
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(max_model_len or getattr(text_config, "max_position_embeddings", None) or 1 << 30)


def _default_stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """The EOS ids of the model's generation config and of the tokenizer, sorted."""
    eos: set[int] = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (gen_eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            eos.add(value)
        elif value is not None:
            eos.update(int(v) for v in value)
    return sorted(eos)


def _forward_keywords(model: Any) -> tuple[str, str | None]:
    """The model's names for the KV-cache and logits-to-keep arguments of `forward`."""
    # transformers 5 renamed `past_key_values` to `cache` and takes `logits_to_keep`.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    cache_kw = "cache" if "cache" in params else "past_key_values"
    keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    return cache_kw, keep_kw


def _load_tokenizer(name: str, trust_remote_code: bool) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"tokenizer {name!r} could not be loaded ({exc}); pass a local path or a hub id "
            "reachable from this machine"
        ) from exc


def _load(
    name: str, tokenizer: Any, device: Any, dtype: Any, trust_remote_code: bool
) -> tuple[Any, Any, Any]:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    from memgym.models import resolve_model_path

    name = resolve_model_path(name)  # "embedded", a folder, a cached or reachable hub id
    if isinstance(dtype, str) and dtype != "auto":
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ConfigError(f"dtype={dtype!r} is not a torch dtype (e.g. 'bfloat16', 'auto')")
        dtype = getattr(torch, dtype)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"  # renamed in 4.56
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name, trust_remote_code=trust_remote_code, **{dtype_kw: dtype or "auto"}
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"model {name!r} could not be loaded ({exc}); pass a local path or a hub id "
            "reachable from this machine"
        ) from exc
    model.to(device).eval()
    if tokenizer is None or isinstance(tokenizer, str):
        tokenizer = _load_tokenizer(tokenizer or name, trust_remote_code)
    return model, tokenizer, device
