"""Environment factories and the ids registered at `import memgym`.

Each factory loads or generates a task source, then builds the env. Keyword arguments that are
not the factory's own (chunk_tokens, memory_tokens, tokenizer, scorer, reward_weights, ...) go to
`LongContextMemoryEnv`; the dialogue factories' go to `DialogueMemoryEnv` (their signatures list
them, so `memgym eval --env-kwargs` is checked against the env's real arguments).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from gymnasium.envs.registration import register, registry

from memgym.envs.dialogue import DialogueMemoryEnv
from memgym.envs.long_context import LongContextMemoryEnv
from memgym.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["make_hotpotqa", "make_squad", "make_ruler", "make_synthetic", "register_envs",
           "register_entry_point_envs", "ENTRY_POINT_GROUP", "PLUGIN_ENVS",
           "make_locomo_dialogue", "make_longmemeval_dialogue", "make_memoryagentbench_dialogue",
           "make_synthetic_dialogue", "ENV_DESCRIPTIONS", "RULER_ENV_NAMES"]


def _bundled_notice(dataset: str) -> str:
    msg = (f"using the bundled {dataset} sample shipped with memgym (offline default); "
           "pass data_path= for the full dataset")
    logger.info(msg)
    return f"bundled {dataset} sample"


def make_hotpotqa(data_path: str | None = None, split: str = "validation", num_docs: int = 50,
                  target_tokens: int | None = None, limit: int | None = None, seed: int = 42,
                  pool: Any = None, docs_path: str | None = None, composition: str = "memagent",
                  **env_kwargs: Any) -> LongContextMemoryEnv:
    """RULER-HQA over HotpotQA: each question's 10 paragraphs plus pool paragraphs to `num_docs`.

    Args:
        data_path: a HotpotQA JSON/JSONL file, a MemAgent `eval_{N}.json`/training parquet, or a
            `datasets` hub id; None uses the bundled sample.
        split: the `datasets` split when data_path is a hub id.
        num_docs: documents per context (MemAgent evaluates 50 ... 25,600).
        target_tokens: compose to this many tokens instead of `num_docs`.
        limit: use only the first `limit` questions.
        seed: the composer's draw seed (fixed: every episode of a task sees the same context).
        pool: extra distractor Documents (default: the other questions' paragraphs).
        docs_path: the HotpotQA dev file that MemAgent's index-form eval files (>= 12,800 docs)
            point into (default: `hotpotqa_dev.json` beside data_path).
        composition: "memagent" (default: MemAgent's procedure, the same document depths for
            every question at a given num_docs) or "per_task_shuffle" (memgym's earlier
            default: a fresh shuffle per task, uniform gold depth); see
            `memgym.data.ruler_hqa`.
    """
    from memgym.data.ruler_hqa import hotpotqa_tasks

    tasks = hotpotqa_tasks(data_path, split=split, num_docs=num_docs, target_tokens=target_tokens,
                           limit=limit, seed=seed, tokenizer=env_kwargs.get("tokenizer"),
                           pool=pool, docs_path=docs_path, composition=composition)
    source = data_path or _bundled_notice("HotpotQA")
    env_kwargs.setdefault("scorer", "sub_em")
    return LongContextMemoryEnv(tasks, source=source, **env_kwargs)


def make_squad(data_path: str | None = None, split: str = "validation", num_docs: int = 50,
               target_tokens: int | None = None, limit: int | None = None, seed: int = 42,
               pool: Any = None, template_variant: str = "memagent",
               **env_kwargs: Any) -> LongContextMemoryEnv:
    """SQuAD question answering over distractor paragraphs (RULER qa_1, MemAgent's OOD task).

    Args are as for `make_hotpotqa`; data_path is a SQuAD JSON (v1.1/v2.0), JSONL or hub id.
    template_variant: the question's wording, "memagent" (default: MemAgent's qa template,
    "Answer the question based on the given documents. {question}"), "ruler" (RULER's qa
    template) or "plain" (the bare question).
    """
    from memgym.data.squad import squad_tasks

    tasks = squad_tasks(data_path, split=split, num_docs=num_docs, target_tokens=target_tokens,
                        limit=limit, seed=seed, tokenizer=env_kwargs.get("tokenizer"), pool=pool,
                        template_variant=template_variant)
    source = data_path or _bundled_notice("SQuAD")
    env_kwargs.setdefault("scorer", "sub_em")
    return LongContextMemoryEnv(tasks, source=source, **env_kwargs)


def make_ruler(task: str, num_tasks: int = 100, target_tokens: int = 8192, seed: int = 0,
               data_path: str | None = None, template_variant: str = "ruler",
               **env_kwargs: Any) -> LongContextMemoryEnv:
    """A RULER synthetic task generated at `target_tokens` (counted with the env's tokenizer).

    Args:
        task: niah_single_1/2/3, niah_multikey_1/2/3, niah_multivalue, niah_multiquery, vt,
            cwe, fwe.
        num_tasks: how many instances; instance t is generated from (seed, t).
        target_tokens: context length per instance.
        seed: generation seed.
        data_path: an optional essay/haystack text file for the niah tasks that use essays;
            or MemAgent's OOD RULER file `eval_{task}_{len}.json` (.json/.jsonl), whose
            instances are then played as published (num_tasks, target_tokens, seed and
            template_variant do not apply).
        template_variant: the prompt wording, "ruler" (default: NVIDIA/RULER's templates) or
            "memagent" (MemAgent's copy for its RULER table).
    """
    from memgym.data.ruler import ruler_tasks

    if data_path is not None and str(data_path).endswith((".json", ".jsonl")):
        from memgym.data.ruler_hqa import memagent_ruler_file

        tasks = memagent_ruler_file(data_path, task)
        env_kwargs.setdefault("answer_format", "plain")
        return LongContextMemoryEnv(tasks, source=f"MemAgent RULER file {data_path}",
                                    **env_kwargs)
    tasks = ruler_tasks(task, num_tasks=num_tasks, target_tokens=target_tokens, seed=seed,
                        tokenizer=env_kwargs.get("tokenizer"), haystack_path=data_path,
                        template_variant=template_variant)
    env_kwargs.setdefault("answer_format", "plain")
    return LongContextMemoryEnv(tasks, source=f"RULER {task} @ {target_tokens} tokens",
                                **env_kwargs)


def make_synthetic(num_tasks: int = 1000, seed: int = 0, **kwargs: Any) -> LongContextMemoryEnv:
    """The offline synthetic memory task: facts (some updated later) scattered through filler.

    Task-generation kwargs (difficulty knobs) go to `memgym.data.synthetic.synthetic_tasks`; the
    rest go to the env.
    """
    import inspect

    from memgym.data.synthetic import synthetic_tasks

    own = set(inspect.signature(synthetic_tasks).parameters)
    task_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in own}
    tasks = synthetic_tasks(num_tasks=num_tasks, seed=seed, **task_kwargs)
    kwargs.setdefault("scorer", "exact_match")
    kwargs.setdefault("chunk_tokens", 32)
    kwargs.setdefault("memory_tokens", 64)
    return LongContextMemoryEnv(tasks, source="synthetic memory task", **kwargs)


# -- dialogue envs ---------------------------------------------------------------------------------
def _with_env_arguments(*sources: Callable[..., Any]) -> Callable[[Callable], Callable]:
    """Give a dialogue factory the signature it really accepts: its own parameters, those of
    `sources` (a generator's) and DialogueMemoryEnv's keywords, so `validate_env` checks
    `--env-kwargs` names offline and `help()` shows them."""

    def decorate(factory: Callable) -> Callable:
        params = [p for p in inspect.signature(factory).parameters.values()
                  if p.kind is not p.VAR_KEYWORD]
        names = {p.name for p in params}
        for source in (*sources, DialogueMemoryEnv.__init__):
            for name, p in inspect.signature(source).parameters.items():
                if name in names or name in ("self", "conversations", "source") or p.kind in (
                        p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    continue
                params.append(p.replace(kind=p.KEYWORD_ONLY))
                names.add(name)
        factory.__signature__ = inspect.Signature(
            sorted(params, key=lambda p: p.kind != p.POSITIONAL_OR_KEYWORD),
            return_annotation="DialogueMemoryEnv")
        return factory

    return decorate


def _read_from(env: DialogueMemoryEnv, data_path: Any) -> DialogueMemoryEnv:
    """`env`, noting the data file it read as `env.data_path` (the default one included): eval
    records it in run.json, so a run on the cached default names its file like any other."""
    env.data_path = str(data_path)
    return env


def _need_data_path(data_path: Any, dataset: str, hint: str) -> None:
    if data_path is None:
        raise ConfigError(f"the {dataset} envs need data_path=: {hint}. Example: "
                          f"gym.make(..., data_path='/path/to/file'); "
                          "MemoryBank-Synthetic-v0 runs offline without data")


@_with_env_arguments()
def make_locomo_dialogue(data_path: str | None = None, split: str | None = None,
                         include_adversarial: bool = False, **env_kwargs: Any
                         ) -> DialogueMemoryEnv:
    """LoCoMo conversations (Memory-R1's or RMM's protocol), one conversation per task.

    Args:
        data_path: LoCoMo's `locomo10.json` (CC BY-NC 4.0, so memgym ships no copy); default:
            the copy `memgym data get locomo` put in memgym's data cache.
        split: None (all ten), or Memory-R1's "train" (conv-26), "validation" (conv-30),
            "test" (the other eight).
        include_adversarial: ask category 5 too (left out by default, as in Memory-R1).
    """
    from memgym.data.download import data_file
    from memgym.data.locomo import load_locomo

    data_path = data_path if data_path is not None else str(data_file("locomo"))
    conversations = load_locomo(data_path, split=split, include_adversarial=include_adversarial)
    source = f"LoCoMo {data_path}" + (f" ({split})" if split else "")
    return _read_from(DialogueMemoryEnv(conversations, source=source, **env_kwargs), data_path)


@_with_env_arguments()
def make_longmemeval_dialogue(data_path: str | None = None, variant: str = "s",
                              question_types: list[str] | None = None,
                              include_abstention: bool = True, limit: int | None = None,
                              **env_kwargs: Any) -> DialogueMemoryEnv:
    """LongMemEval: one task per question, its haystack sessions streamed before it.

    Args:
        data_path: a LongMemEval file (`longmemeval_s_cleaned.json`, M or oracle; JSON, JSONL
            or parquet) or a hub id; default: for variant "s" or "oracle", the file
            `memgym data get longmemeval` put in memgym's data cache.
        variant, question_types, include_abstention, limit: as `memgym.data.load_longmemeval`.
    """
    from memgym.data.download import data_file
    from memgym.data.longmemeval import load_longmemeval

    if data_path is None and variant in ("s", "oracle"):
        data_path = str(data_file("longmemeval", "longmemeval_s_cleaned.json" if variant == "s"
                                  else "longmemeval_oracle.json"))
    _need_data_path(data_path, "LongMemEval (RMM-LongMemEval-v0, MemoryR1-LongMemEval-v0)",
                    "a LongMemEval file such as longmemeval_s_cleaned.json, or a hub id")
    conversations = load_longmemeval(data_path, variant=variant, question_types=question_types,
                                     include_abstention=include_abstention, limit=limit)
    return _read_from(DialogueMemoryEnv(conversations, source=f"LongMemEval {data_path}",
                                        **env_kwargs), data_path)


@_with_env_arguments()
def make_memoryagentbench_dialogue(data_path: str | None = None, competency: str | None = None,
                                   chunk_tokens: int = 512, chunks_per_session: int = 1,
                                   sources: list[str] | None = None, limit: int | None = None,
                                   **env_kwargs: Any) -> DialogueMemoryEnv:
    """MemoryAgentBench: a row's context fed as chunk turns (speaker "context"), then its
    questions; one retrieval pool (no per-speaker split) unless `per_speaker_k` is given.

    Args:
        data_path: a local file or folder of MemoryAgentBench rows, or its hub id
            "ai-hyz/MemoryAgentBench" (the env does not reach the hub unasked); default: the
            folder `memgym data get memoryagentbench` filled in memgym's data cache, if any.
        competency, chunk_tokens, chunks_per_session, sources, limit: as
            `memgym.data.load_memoryagentbench` (chunks are counted in words).
    """
    from memgym.data.download import data_dir
    from memgym.data.memoryagentbench import load_memoryagentbench

    cached = data_dir() / "memoryagentbench"
    if data_path is None and any(cached.glob("*.parquet")):
        data_path = str(cached)
    _need_data_path(data_path, "MemoryAgentBench (MemoryBank-MemoryAgentBench-v0)",
                    "a folder or file of ai-hyz/MemoryAgentBench rows, or that hub id, plus "
                    "competency= (`memgym data get memoryagentbench` fills memgym's data cache, "
                    "read by default)")
    conversations = load_memoryagentbench(data_path, competency=competency,
                                          chunk_tokens=chunk_tokens,
                                          chunks_per_session=chunks_per_session,
                                          sources=sources, limit=limit)
    env_kwargs.setdefault("per_speaker_k", 0)
    return _read_from(DialogueMemoryEnv(conversations, source=f"MemoryAgentBench {data_path}",
                                        **env_kwargs), data_path)


def _generator() -> Callable[..., Any]:
    from memgym.data.synthetic_dialogue import generate_dialogues

    return generate_dialogues


@_with_env_arguments(_generator())
def make_synthetic_dialogue(num_conversations: int = 20, seed: int = 0, **kwargs: Any
                            ) -> DialogueMemoryEnv:
    """The offline synthetic multi-session dialogue task (Memory-R1's protocol by default).

    Generator kwargs (`memgym.data.synthetic_dialogue.generate_dialogues`' difficulty knobs)
    go to the generator, the rest to the env. Conversation t is generated from (seed, t).
    """
    generate = _generator()
    own = set(inspect.signature(generate).parameters)
    gen_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in own}
    conversations = generate(num_conversations=num_conversations, seed=seed, **gen_kwargs)
    return DialogueMemoryEnv(conversations, source=f"synthetic dialogues (seed {seed})",
                             **kwargs)


RULER_ENV_NAMES: dict[str, str] = {
    "niah_single_1": "NIAH-Single-1", "niah_single_2": "NIAH-Single-2",
    "niah_single_3": "NIAH-Single-3", "niah_multikey_1": "NIAH-MultiKey-1",
    "niah_multikey_2": "NIAH-MultiKey-2", "niah_multikey_3": "NIAH-MultiKey-3",
    "niah_multivalue": "NIAH-MultiValue", "niah_multiquery": "NIAH-MultiQuery",
    "vt": "VT", "cwe": "CWE", "fwe": "FWE",
}

_RULER_BLURBS = {
    "niah_single_1": "one needle (number) in repeated filler noise",
    "niah_single_2": "one needle (number) in an essay haystack",
    "niah_single_3": "one needle (UUID) in an essay haystack",
    "niah_multikey_1": "one needle among distractor needles, essay haystack",
    "niah_multikey_2": "one needle in a haystack made only of needles",
    "niah_multikey_3": "UUID key and value in a haystack of UUID needles",
    "niah_multivalue": "all values of one key, scattered",
    "niah_multiquery": "values of several keys at once",
    "vt": "variable tracking: every variable bound to a value through a chain",
    "cwe": "common-word extraction: the most frequent words in a long list",
    "fwe": "frequent-word extraction: the most frequent coded words",
}

ENV_DESCRIPTIONS: dict[str, str] = {
    "MemAgent-HotpotQA-v0": "RULER-HQA: HotpotQA multi-hop QA over N documents (MemAgent's task)",
    "MemAgent-SQuAD-v0": "SQuAD QA over N distractor paragraphs (MemAgent's OOD task, RULER qa_1)",
    "MemAgent-Synthetic-v0": "offline synthetic memory task: updated facts, distractor keys",
    **{f"MemAgent-RULER-{name}-v0": f"RULER {task}: {_RULER_BLURBS[task]}"
       for task, name in RULER_ENV_NAMES.items()},
    "MemoryR1-LoCoMo-v0": "LoCoMo turn by turn into a memory bank, Memory-R1's JSON operations "
                          "(data_path=locomo10.json, split=train|validation|test)",
    "RMM-LoCoMo-v0": "LoCoMo session by session, RMM's Add()/Merge() reflection "
                     "(data_path=locomo10.json)",
    "RMM-LongMemEval-v0": "LongMemEval haystack sessions, RMM's reflection, one question per "
                          "task (data_path=longmemeval_s_cleaned.json)",
    "MemoryR1-LongMemEval-v0": "LongMemEval haystack turn by turn, Memory-R1's operations "
                               "(data_path=longmemeval_s_cleaned.json)",
    "MemoryBank-MemoryAgentBench-v0": "MemoryAgentBench contexts as chunk turns into a memory "
                                      "bank (data_path=..., competency=...)",
    "MemoryBank-Synthetic-v0": "offline synthetic multi-session dialogues: facts introduced, "
                               "updated, contradicted, retracted (memory bank, Memory-R1 ops)",
}


def register_envs() -> None:
    """Register every memgym id with Gymnasium (idempotent)."""
    entries: dict[str, tuple[str, dict[str, Any]]] = {
        "MemAgent-HotpotQA-v0": ("memgym.envs.registration:make_hotpotqa", {}),
        "MemAgent-SQuAD-v0": ("memgym.envs.registration:make_squad", {}),
        "MemAgent-Synthetic-v0": ("memgym.envs.registration:make_synthetic", {}),
    }
    for task, name in RULER_ENV_NAMES.items():
        entries[f"MemAgent-RULER-{name}-v0"] = ("memgym.envs.registration:make_ruler",
                                                {"task": task})
    here = "memgym.envs.registration:"
    entries.update({
        "MemoryR1-LoCoMo-v0": (here + "make_locomo_dialogue", {"protocol": "memory_r1"}),
        "RMM-LoCoMo-v0": (here + "make_locomo_dialogue", {"protocol": "rmm"}),
        "RMM-LongMemEval-v0": (here + "make_longmemeval_dialogue", {"protocol": "rmm"}),
        "MemoryR1-LongMemEval-v0": (here + "make_longmemeval_dialogue",
                                    {"protocol": "memory_r1"}),
        "MemoryBank-MemoryAgentBench-v0": (here + "make_memoryagentbench_dialogue", {}),
        "MemoryBank-Synthetic-v0": (here + "make_synthetic_dialogue", {}),
    })
    for env_id, (entry_point, kwargs) in entries.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, kwargs=kwargs,
                     disable_env_checker=False, order_enforce=True)
    register_entry_point_envs()


ENTRY_POINT_GROUP = "memgym.envs"
"""The entry point group through which an installed package registers its envs at `import memgym`."""

PLUGIN_ENVS: dict[str, tuple[str, str]] = {}
"""Ids registered by outside packages: env id -> (entry point name, one-line description)."""


def register_entry_point_envs(entry_points: Any = None) -> dict[str, tuple[str, str]]:
    """Call every `memgym.envs` entry point's register function (once each); returns PLUGIN_ENVS.

    An outside package declares, in its pyproject.toml,

        [project.entry-points."memgym.envs"]
        my-task = "my_task:register"

    and `register()` calls `gymnasium.register(...)` for its ids; it may return {id: one-line
    description} for `memgym envs`. A failing plugin is logged (with its name and the error) and
    skipped: one broken package must not break `import memgym`.

    Args:
        entry_points: the entry points to load (default: the installed ones of the group).
    """
    if entry_points is None:
        from importlib.metadata import entry_points as installed

        entry_points = installed(group=ENTRY_POINT_GROUP)
    done = {name for name, _ in PLUGIN_ENVS.values()}
    for ep in entry_points:
        if ep.name in done:
            continue
        before = set(registry)
        try:
            described = ep.load()() or {}
        except Exception as exc:  # noqa: BLE001  (a plugin's bug is reported, not raised)
            logger.warning("memgym: the %r entry point (%s) of group %s failed: %s: %s; its "
                           "envs are not registered", ep.name, ep.value, ENTRY_POINT_GROUP,
                           type(exc).__name__, exc)
            continue
        for env_id in sorted(set(registry) - before) or sorted(described):
            blurb = described.get(env_id, "") if isinstance(described, dict) else ""
            PLUGIN_ENVS[env_id] = (ep.name, str(blurb))
    return PLUGIN_ENVS
