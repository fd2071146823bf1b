"""The one way agents call an LLM: build the request, await the backend, record the Turn.

`LLMCall` is an LLM call site as a recipe declares it (template, sampling, max tokens, trainable,
backend), with its defaults on the class; `LLMCall.bind` turns it into an `LLMComponent`, the
callable an agent awaits. Agent kinds declare their calls as named `LLMCall` fields (or
parameters), which is how the trainer reaches every trainable call the same way
(`memgym.agents.recipe.llm_calls`).

Every LLM call of every agent goes through `call_llm`, so every call lands in `ctx.turns` with
its token ids and logprobs (what the trainer optimises) and nothing an agent does can lose one.
A backend that raises, or returns an error completion, does not end the episode: the error is
recorded on the Turn (finish_reason "error", not trainable) and the caller receives an empty
completion to fall back from.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import memgym.agents.dialogue_prompts  # noqa: F401  (registers the templates an LLMCall may name)
from memgym.agents.base import EpisodeContext, Turn
from memgym.agents.episode import derive_seed
from memgym.agents.prompts import PromptTemplate, get_template
from memgym.errors import ConfigError
from memgym.imports import import_object, is_import_path
from memgym.llm.base import Completion, GenerationRequest, LLMBackend, SamplingParams
from memgym.llm.spec import BackendSpec, build_backend

__all__ = ["LLMCall", "LLMComponent", "call_llm"]


@dataclass(frozen=True)
class LLMCall:
    """One LLM call site of an agent, as a recipe sets it: `manager: {temperature: 0.0}`.

    An agent kind declares each of its calls as a field (or factory parameter) of this type whose
    default is the kind's own setting, e.g. `manager: LLMCall = LLMCall("dialogue_memory_manager",
    max_new_tokens=512)`; a recipe's mapping is applied over that default, key by key.
    """

    template: str | None = None
    """Its prompt template: a registered name (memgym.agents.prompts, dialogue_prompts) or a
    'package.module:NAME' import path of a PromptTemplate (or of a plain string)."""
    max_new_tokens: int = 256
    """Cap of each call, in tokens (the trainer caps it at its max_completion_length)."""
    temperature: float = 1.0
    """Sampling temperature; 0 is greedy (the trainer sets its own on trainable calls)."""
    top_p: float = 1.0
    """Nucleus sampling; 1.0 disables it."""
    top_k: int = 0
    """Top-k sampling; 0 disables it."""
    chat: bool = True
    """Send the prompt as a chat message, templated by the backend's tokenizer."""
    trainable: bool = True
    """Whether the trainer optimises its calls."""
    backend: BackendSpec | None = None
    """Its own backend, frozen (trainable must be false); None: the run's backend
    (`memgym eval --backend/--model`, the trainer's policy)."""

    def sampling(self) -> SamplingParams:
        """Its sampling settings, as the backend takes them."""
        return SamplingParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                              top_p=self.top_p, top_k=self.top_k)

    def prompt_template(self, slots: tuple[str, ...] = (), *, where: str = "template"
                        ) -> PromptTemplate:
        """Its template, checked to have exactly `slots` (when given)."""
        if self.template is None:
            raise ConfigError(f"{where}: no template; set one (a registered name or "
                              "'package.module:NAME')")
        if not is_import_path(self.template):
            return get_template(self.template, slots)
        found = import_object(self.template, key=where)
        if isinstance(found, str):
            found = PromptTemplate(self.template, found)
        if not isinstance(found, PromptTemplate):
            raise ConfigError(f"{where}={self.template!r} is a {type(found).__name__}, not a "
                              "PromptTemplate or a string")
        if slots and set(found.fields) != set(slots):
            raise ConfigError(f"{where}={self.template!r} has slots {list(found.fields)}, but "
                              f"this call fills {list(slots)}")
        return found

    def bind(self, backend: LLMBackend | None, *, component: str, slots: tuple[str, ...] = (),
             built: dict[str, LLMBackend] | None = None) -> LLMComponent:
        """The callable component: its template checked, its backend chosen.

        Args:
            backend: the run's backend, used unless the call names its own.
            component: the Turn's component name, and the recipe key in error messages.
            slots: the fields the agent fills; the template must have exactly these.
            built: backends already built from specs, shared by the agent's calls (one server
                client or model per distinct spec).

        Raises:
            ConfigError: no backend at all, a trainable call with its own backend, or a template
                that is unknown or has other slots.
        """
        if self.backend is not None:
            if self.trainable:
                raise ConfigError(f"{component}: a call with its own backend is frozen (the "
                                  "trainer trains the run's policy backend only); set "
                                  f"{component}.trainable=false or drop {component}.backend")
            built = {} if built is None else built
            key = repr(dataclasses.asdict(self.backend))
            if key not in built:
                built[key] = build_backend(self.backend, flag=f"{component}.backend.")
            backend = built[key]
        if backend is None:
            raise ConfigError(f"{component}: no backend: pass --backend/--model to memgym eval "
                              f"or set {component}.backend in the recipe")
        template = self.prompt_template(slots, where=f"{component}.template")
        return LLMComponent(backend, template, self.sampling(), component=component,
                            chat=self.chat, trainable=self.trainable)


class LLMComponent:
    """One LLM call site of an agent, ready to call: its backend, prompt, sampling, training flag.

    Args:
        backend: the backend this component calls (each component may have its own).
        template: the prompt template.
        sampling: its sampling settings.
        component: the Turn's component name ("extractor", "manager", "answerer", ...).
        chat: send the prompt as a chat message.
        trainable: whether the trainer optimises its calls.
    """

    def __init__(self, backend: LLMBackend, template: PromptTemplate, sampling: SamplingParams,
                 *, component: str, chat: bool = True, trainable: bool = True):
        self.backend = backend
        self.template = template
        self.sampling = sampling
        self.component = component
        self.chat = chat
        self.trainable = trainable

    async def __call__(self, ctx: EpisodeContext, **fields: str) -> Completion:
        """Render the template with `fields`, call the backend, record the Turn."""
        return await call_llm(self.backend, ctx, component=self.component,
                              prompt=self.template.render(**fields), sampling=self.sampling,
                              chat=self.chat, trainable=self.trainable)


async def call_llm(backend: LLMBackend, ctx: EpisodeContext, *, component: str, prompt: str,
                   sampling: SamplingParams, chat: bool = True, system: str | None = None,
                   trainable: bool = True) -> Completion:
    """Send `prompt` to `backend`, record the call as a Turn in `ctx.turns`, return the completion.

    Args:
        backend: any LLMBackend.
        ctx: the episode's context; the Turn gets `ctx.step` and is appended to `ctx.turns`.
        component: which part of the agent calls ("memory_update", "answer", ...).
        prompt: the rendered prompt text (the user message when `chat`).
        sampling: sampling settings; when its seed is None and `ctx.sampling_seed` is set, the
            call gets the seed `derive_seed(ctx.sampling_seed, call_index)` (call_index counts
            the episode's earlier calls), so neighbouring calls and episodes do not collide.
        chat: send `prompt` as one user chat message (templated by the backend) rather than raw
            text.
        system: an optional system message (chat only).
        trainable: whether the trainer optimises this call (errored calls never are).

    Returns:
        The backend's completion; on failure an empty one with finish_reason "error".
    """
    if sampling.seed is None and ctx.sampling_seed is not None:
        sampling = dataclasses.replace(sampling, seed=derive_seed(ctx.sampling_seed, len(ctx.turns)))
    if chat:
        messages = ({"role": "system", "content": system},) if system else ()
        request = GenerationRequest(messages=messages + ({"role": "user", "content": prompt},),
                                    sampling=sampling)
    else:
        request = GenerationRequest(prompt=prompt, sampling=sampling)
    start = time.perf_counter()
    try:
        completion = await backend.generate(request)
    except Exception as exc:  # noqa: BLE001 - any backend failure is the episode's, not the run's
        completion = Completion(text="", finish_reason="error",
                                error=f"{type(exc).__name__}: {exc}")
    latency = time.perf_counter() - start
    failed = completion.finish_reason == "error" or completion.error is not None
    ctx.turns.append(Turn(
        component=component,
        step=ctx.step,
        prompt=completion.prompt_text or prompt,
        completion=completion.text,
        prompt_ids=list(completion.prompt_ids),
        completion_ids=list(completion.completion_ids),
        logprobs=list(completion.logprobs),
        trainable=trainable and not failed,
        finish_reason="error" if failed else completion.finish_reason,
        error=(completion.error or "backend reported an error") if failed else None,
        latency_s=latency,
    ))
    if failed and completion.text:
        # an error completion's partial text is recorded but never acted on
        completion = dataclasses.replace(completion, text="")
    return completion
