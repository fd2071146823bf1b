"""The LLM judge of dialogue evaluations: CORRECT/WRONG verdicts from an OpenAI-compatible server.

    judge = build_judge("http://127.0.0.1:8000/v1", "gpt-4o-mini")
    env = gym.make("MemoryR1-LoCoMo-v0", data_path=..., judge=judge)  # what `memgym eval` does

The prompt is pinned: `JUDGE_PROMPT` is mem0's LoCoMo `ACCURACY_PROMPT` word for word (the
LLM-as-judge prompt mem0 reports "J" with; Memory-R1's Figure 12, appendix C, is a light edit
of it, and the paper names no judge model), so a memgym judge score is comparable to mem0's
given the same judge model, and close to Memory-R1's; `memgym eval --judge-model` records its SHA-256, source,
the judge model and base URL in run.json and summary.json. As in mem0, the judge is asked at
temperature 0 with the prompt as one user message and a verdict of CORRECT scores 1, WRONG 0.
mem0 also sends `response_format={"type": "json_object"}`; not every OpenAI-compatible server
takes it, so memgym does not send it by default (pass `extra_body=` in the judge's backend
kwargs to add it) and parses the verdict tolerantly instead (`parse_verdict`).

Failures never stop a run: a request that fails (the server is down, a 5xx after retries, a
bad status) or a reply with no clear verdict makes the judge return None for that question; the
dialogue env then records `judge: null` for it, `summarize` counts it (`judge_failed`) and leaves
it out of the judge's mean, and `LLMJudge.report()` says why (by kind, with a few examples).

The judge is called synchronously from `env.step`; an env with a judge declares `step_blocks`,
so `run_episode` steps it on a worker thread and the other episodes go on while a verdict
is awaited.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from memgym.errors import ConfigError, MemgymError

__all__ = ["JUDGE_PROMPT", "JUDGE_PROMPT_SHA256", "JUDGE_PROMPT_SOURCE", "LLMJudge",
           "build_judge", "judge_messages", "parse_verdict"]

# The prompt below is mem0's ACCURACY_PROMPT, copied unchanged (Apache License 2.0, which
# allows redistribution with attribution): Copyright mem0ai, https://github.com/mem0ai/mem0,
# evaluation/metrics/llm_judge.py at commit b3ede5b7c0ac0e847b03786a603c107ac943b3ee (the last
# commit before mem0 moved its evaluation to mem0ai/memory-benchmarks). Its curly quotes and
# trailing spaces are kept: JUDGE_PROMPT_SHA256 pins these exact bytes.
JUDGE_PROMPT = """
Your task is to label an answer to a question as ’CORRECT’ or ’WRONG’. You will be given the following data:
    (1) a question (posed by one user to another user), 
    (2) a ’gold’ (ground truth) answer, 
    (3) a generated answer
which you will score as CORRECT/WRONG.

The point of the question is to ask about something one user should know about the other user based on their prior conversations.
The gold answer will usually be a concise and short answer that includes the referenced topic, for example:
Question: Do you remember what I got the last time I went to Hawaii?
Gold answer: A shell necklace
The generated answer might be much longer, but you should be generous with your grading - as long as it touches on the same topic as the gold answer, it should be counted as CORRECT. 

For time related questions, the gold answer will be a specific date, month, year, etc. The generated answer might be much longer or use relative time references (like "last Tuesday" or "next month"), but you should be generous with your grading - as long as it refers to the same date or time period as the gold answer, it should be counted as CORRECT. Even if the format differs (e.g., "May 7th" vs "7 May"), consider it CORRECT if it's the same date.

Now it's time for the real question:
Question: {question}
Gold answer: {gold_answer}
Generated answer: {generated_answer}

First, provide a short (one sentence) explanation of your reasoning, then finish with CORRECT or WRONG. 
Do NOT include both CORRECT and WRONG in your response, or it will break the evaluation script.

Just return the label CORRECT or WRONG in a json format with the key as "label".
"""

JUDGE_PROMPT_SOURCE = ("mem0ai/mem0 evaluation/metrics/llm_judge.py ACCURACY_PROMPT @ "
                       "b3ede5b7c0ac0e847b03786a603c107ac943b3ee (Apache-2.0)")
"""Where JUDGE_PROMPT comes from (recorded with every judged run)."""

JUDGE_PROMPT_SHA256 = "sha256:" + hashlib.sha256(JUDGE_PROMPT.encode("utf-8")).hexdigest()
"""The pinned prompt's hash (recorded with every judged run)."""

GOLD_SEPARATOR = " OR "
"""Joins several gold answers into mem0's one `gold_answer` slot (LoCoMo has one per question)."""

MAX_EXAMPLES = 5
"""Failures kept verbatim in `LLMJudge.report()` (the first ones)."""

_LABEL = re.compile(r"\b(CORRECT|WRONG)\b", re.IGNORECASE)
_JSON_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)


def judge_messages(question: str, prediction: str, golds: Sequence[str],
                   prompt: str = JUDGE_PROMPT) -> tuple[dict[str, str], ...]:
    """The judge's chat request: the prompt filled in, as one user message (as mem0 sends it)."""
    gold = GOLD_SEPARATOR.join(str(g) for g in golds)
    text = prompt.format(question=question, gold_answer=gold, generated_answer=prediction)
    return ({"role": "user", "content": text},)


def parse_verdict(text: str) -> float | None:
    """The score of a judge's reply: 1.0 for CORRECT, 0.0 for WRONG, None when it is unclear.

    A JSON object with a "label" key decides (the last such object, case-insensitive, inside
    code fences or prose too: mem0's format, `{"label": "CORRECT"}`). Without one, the reply's
    words decide if exactly one of CORRECT and WRONG occurs (the prompt forbids both). Anything
    else (both words, neither, a label of another value) is None: unparseable, not wrong.
    """
    for block in reversed(_JSON_OBJECT.findall(text)):
        try:
            data = json.loads(block)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "label" in data:
            label = str(data["label"]).strip().strip("'\"’").upper()
            return {"CORRECT": 1.0, "WRONG": 0.0}.get(label)
    labels = {m.upper() for m in _LABEL.findall(text)}
    if len(labels) == 1:
        return 1.0 if labels == {"CORRECT"} else 0.0
    return None


class LLMJudge:
    """judge(question, prediction, golds) -> 1.0 / 0.0, or None without a verdict (thread-safe).

    The callable the dialogue env takes as `judge=` (the env imports no model: `memgym eval`
    builds this and injects it). Each call sends one greedy chat request through `backend`
    (`memgym.llm.OpenAIBackend`, or any backend with `generate_batch`) and parses the reply
    with `parse_verdict`. It counts its calls, verdicts, failures (by kind: "request" when the
    backend failed or raised, "unparseable" when the reply had no clear verdict) and latencies;
    `report()` returns them with the judge's settings.

    Args:
        backend: the backend to ask.
        model: the judge model's name (recorded).
        base_url: the server's URL (recorded).
        prompt: the prompt template ({question}, {gold_answer}, {generated_answer}); the
            default is the pinned JUDGE_PROMPT.
        max_new_tokens: the reply's budget (a sentence of reasoning, then the label).
    """

    def __init__(self, backend: Any, *, model: str, base_url: str | None = None,
                 prompt: str = JUDGE_PROMPT, max_new_tokens: int = 256):
        for slot in ("{question}", "{gold_answer}", "{generated_answer}"):
            if slot not in prompt:
                raise ConfigError(f"judge prompt: it has no {slot} slot; the judge fills in "
                                  "{question}, {gold_answer} and {generated_answer}")
        if max_new_tokens < 1:
            raise ConfigError(f"judge max_new_tokens must be at least 1, got {max_new_tokens}")
        self.backend, self.model, self.base_url = backend, model, base_url
        self.prompt, self.max_new_tokens = prompt, int(max_new_tokens)
        self._lock = threading.Lock()
        self._verdicts = {"CORRECT": 0, "WRONG": 0}
        self._failures = {"request": 0, "unparseable": 0}
        self._examples: list[dict[str, str]] = []
        self._latencies: list[float] = []

    def __repr__(self) -> str:  # stable: run.json records what it is, not where it lives
        return (f"LLMJudge(model={self.model!r}, base_url={self.base_url!r}, "
                f"prompt={self.prompt_sha256})")

    @property
    def prompt_sha256(self) -> str:
        """SHA-256 of the prompt template in use."""
        return "sha256:" + hashlib.sha256(self.prompt.encode("utf-8")).hexdigest()

    def __call__(self, question: str, prediction: str, golds: Sequence[str]) -> float | None:
        """Ask for a verdict on one answer; None (counted) when there is none."""
        from memgym.llm.base import GenerationRequest, SamplingParams

        request = GenerationRequest(
            messages=judge_messages(question, prediction, golds, self.prompt),
            sampling=SamplingParams(max_new_tokens=self.max_new_tokens, temperature=0.0))
        start = time.perf_counter()
        try:
            completion = self.backend.generate_batch([request])[0]
        except (MemgymError, OSError) as exc:  # a server that is down: BackendUnavailable
            return self._fail("request", question, f"{type(exc).__name__}: {exc}", start)
        if completion.finish_reason == "error" or completion.error is not None:
            return self._fail("request", question, completion.error or "error completion", start)
        score = parse_verdict(completion.text)
        if score is None:
            return self._fail("unparseable", question, completion.text[:500], start)
        with self._lock:
            self._verdicts["CORRECT" if score == 1.0 else "WRONG"] += 1
            self._latencies.append(time.perf_counter() - start)
        return score

    def _fail(self, kind: str, question: str, detail: str, start: float) -> None:
        with self._lock:
            self._failures[kind] += 1
            self._latencies.append(time.perf_counter() - start)
            if len(self._examples) < MAX_EXAMPLES:
                self._examples.append({"kind": kind, "question": question[:200],
                                       "detail": detail})
        return None

    def settings(self) -> dict[str, Any]:
        """What the judge is (recorded in run.json, compared on --resume): model, URL, prompt."""
        return {"model": self.model, "base_url": self.base_url,
                "prompt_sha256": self.prompt_sha256,
                "prompt_source": JUDGE_PROMPT_SOURCE if self.prompt == JUDGE_PROMPT else "custom",
                "prompt": self.prompt, "temperature": 0.0, "max_new_tokens": self.max_new_tokens}

    def report(self) -> dict[str, Any]:
        """The settings plus this process's counts: calls, verdicts, failures, call latency."""
        with self._lock:
            latencies = list(self._latencies)
            verdicts, failures = dict(self._verdicts), dict(self._failures)
            examples = list(self._examples)
        latency = {"p50": None, "p95": None, "max": None}
        if latencies:
            x = np.asarray(latencies)
            latency = {"p50": float(np.percentile(x, 50)), "p95": float(np.percentile(x, 95)),
                       "max": float(x.max())}
        return {**self.settings(), "calls": len(latencies), "verdicts": verdicts,
                "failures": failures, "failure_examples": examples, "call_latency_s": latency}


def build_judge(base_url: str, model: str, backend_kwargs: dict[str, Any] | None = None,
                max_new_tokens: int = 256) -> LLMJudge:
    """An LLMJudge on an OpenAI-compatible server (`--judge-base-url`, `--judge-model`).

    Logprobs are not asked for (a verdict needs none) unless `backend_kwargs` says otherwise.

    Raises:
        ConfigError: a base URL that is not http(s), or bad backend arguments.
    """
    from memgym.llm import make_backend

    kwargs = {"logprobs": False, **dict(backend_kwargs or {})}
    backend = make_backend("openai", base_url=base_url, model=model, **kwargs)
    return LLMJudge(backend, model=model, base_url=getattr(backend, "base_url", base_url),
                    max_new_tokens=max_new_tokens)
