"""RULER's synthetic tasks (Hsieh et al., 2024), generated natively at any token length.

The eleven synthetic tasks of NVIDIA/RULER's `synthetic.yaml`, with its needle, haystack, query
and answer definitions and its metric (`string_match_all` for all of them):

| task            | what is hidden                                       | haystack            |
| --------------- | ---------------------------------------------------- | ------------------- |
| niah_single_1   | 1 needle, word key -> 7-digit number                 | repeated noise      |
| niah_single_2   | 1 needle, word key -> 7-digit number                 | essay               |
| niah_single_3   | 1 needle, word key -> UUID                           | essay               |
| niah_multikey_1 | 4 needles (4 keys), one queried                      | essay               |
| niah_multikey_2 | 1 needle among thousands of distractor needles       | needles (word keys) |
| niah_multikey_3 | as multikey_2 with UUID keys and UUID values         | needles (UUID keys) |
| niah_multivalue | 4 needles for one key; all 4 values asked            | essay               |
| niah_multiquery | 4 keys, 4 needles; all 4 keys asked at once          | essay               |
| vt              | VAR A = 12345, VAR B = VAR A, ... (4 hops): all vars | repeated noise      |
| cwe             | numbered words: 10 common x30, the rest x3           | (the list itself)   |
| fwe             | coded words, Zipf(2) counts: top 3 (rank 1 is '...') | (the text itself)   |

cwe repeats 6 and 1 times below 4096 tokens, as RULER does.

A needle reads "One of the special magic {numbers|uuids|words} for {key} is: {value}.", word keys
are "adjective-noun", numbers have 7 digits, UUIDs are version 4. In essay haystacks needles sit
at depths drawn from RULER's 40 evenly spaced depths (0..100%); in noise and needle haystacks at
uniformly random depths; variable-tracking statements at sorted random depths, so each chain
reads in order. Every instance is built from `(task, seed, t)` alone: its keys, values and query
are the same at every target length; only the haystack grows.

`Task.context` is the context cut into pieces of at most ~48 tokens (whole sentences, noise
lines or list entries) so the environment's chunker streams it; `Task.question` is RULER's
prompt without the context (the template's text before `{context}`, a space, the text
after: RULER_TEMPLATES, byte for byte; `template_variant="memagent"` uses MemAgent's copy,
MEMAGENT_TEMPLATES, whose questions are already context-free);
`Task.answers` are the gold strings; `Task.gold_context` the needle sentences (or the variable
chain) the answer depends on; `metadata` records `target_tokens`, the measured `tokens`, the
answer prefix and the needle depths.

Departures from RULER, and why:
- Length. `target_tokens` counts the streamed context only (pieces joined by PIECE_SEPARATOR),
  measured with the given tokenizer: the question is shown separately by the memory environment,
  and there is no generation budget to reserve. Generation counts each sentence once, as it
  reads in the context, and adds the counts up (plus separator tokens) instead of re-counting
  the haystack, so a context lands within one sentence below the target (exactly, with the word
  counter). Word lists (cwe, fwe) are fitted the same way and, where a BPE tokenizer makes the
  estimate miss by more than 1%, rebuilt once or twice with the miss corrected.
  `metadata["tokens"]` is the measured count.
- Essay. RULER's "essay" haystack is Paul Graham's essays, which cannot be downloaded here.
  `haystack_path` takes any UTF-8 text file (those essays included), read sentence by sentence
  from its start and cycled when shorter than the target (RULER would stop short). Without a file,
  a built-in sentence grammar (`memgym.data.words.essay_sentence`) writes essay-like prose from
  the instance's own seed, so each instance has its own essay.
- Words. Keys and cwe words come from memgym's built-in lists (~900 English words) instead of
  `wonderwords`; when cwe needs more distinct words than that (from ~8K tokens with the default
  counter), pronounceable pseudo-words (`memgym.data.words.pseudo_words`) follow.
- Few-shot. RULER prepends one solved example to vt and cwe prompts; a memory agent sees the
  question with every chunk, so it is left out (the task text is unchanged otherwise).
- fwe normalises Zipf frequencies over its vocabulary instead of by zeta(alpha); this only
  rescales the word count, which is fitted to the target anyway.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import string
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memgym.data.task import PIECE_SEPARATOR, LazyTasks, Task
from memgym.data.words import ADJECTIVES, ENGLISH_WORDS, NOUNS, essay_sentences, pseudo_words
from memgym.errors import ConfigError, DataError, unknown_name
from memgym.tokenizers import TokenCounter, load_token_counter

__all__ = ["RULER_TASKS", "RulerTasks", "ruler_tasks", "NOISE", "NEEDLE", "DEPTHS",
           "PIECE_TOKENS", "Prompt", "ruler_prompt", "RULER_TEMPLATES", "MEMAGENT_TEMPLATES",
           "TEMPLATE_VARIANTS", "check_template_variant"]

NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
"""RULER's repeated-noise haystack unit (niah_single_1 and vt)."""

NEEDLE = "One of the special magic {type} for {key} is: {value}."
"""RULER's needle template; `type` is the plural value type (numbers, uuids, words)."""

DEPTHS: tuple[int, ...] = tuple(round(100 * i / 39) for i in range(40))
"""RULER's 40 needle depths in percent (0..100, evenly spaced) for essay haystacks."""

PIECE_TOKENS = 48
"""Context pieces hold at most this many tokens (unless one sentence is longer)."""

_SCORER = "string_match_all"


@dataclass(frozen=True)
class _Niah:
    haystack: str  # "noise" | "essay" | "needle"
    key_type: str  # "words" | "numbers" | "uuids"
    value_type: str
    num_keys: int = 1
    num_values: int = 1
    num_queries: int = 1


_NIAH: dict[str, _Niah] = {
    "niah_single_1": _Niah("noise", "words", "numbers"),
    "niah_single_2": _Niah("essay", "words", "numbers"),
    "niah_single_3": _Niah("essay", "words", "uuids"),
    "niah_multikey_1": _Niah("essay", "words", "numbers", num_keys=4),
    "niah_multikey_2": _Niah("needle", "words", "numbers"),
    "niah_multikey_3": _Niah("needle", "uuids", "uuids"),
    "niah_multivalue": _Niah("essay", "words", "numbers", num_values=4),
    "niah_multiquery": _Niah("essay", "words", "numbers", num_queries=4),
}
_VT_CHAINS, _VT_HOPS = 1, 4
_CWE_NUM_COMMON = 10
_FWE_ALPHA, _FWE_WORD_LEN = 2.0, 6

RULER_TASKS: tuple[str, ...] = (*_NIAH, "vt", "cwe", "fwe")
"""The RULER synthetic task names `ruler_tasks` generates."""

TEMPLATE_VARIANTS: tuple[str, ...] = ("ruler", "memagent")
"""Prompt wordings: NVIDIA/RULER's, or MemAgent's copy for its out-of-domain RULER table."""

RULER_TEMPLATES: dict[str, tuple[str, str]] = {
    # (template, answer_prefix), byte for byte RULER's scripts/data/synthetic/constants.py.
    "niah": (
        ("Some special magic {type_needle_v} are hidden within the following text. Make sure to "
         "memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat "
         "are all the special magic {type_needle_v} for {query} mentioned in the provided text?"),
        " The special magic {type_needle_v} for {query} mentioned in the provided text are"),
    "variable_tracking": (
        ("Memorize and track the chain(s) of variable assignment hidden in the following text."
         "\n\n{context}\nQuestion: Find all variables that are assigned the value {query} in "
         "the text above."),
        (" Answer: According to the chain(s) of variable assignment in the text above, {num_v} "
         "variables are assigned the value {query}, they are: ")),
    "common_words_extraction": (
        ("Below is a numbered list of words. In these words, some appear more often than "
         "others. Memorize the ones that appear most often.\n{context}\nQuestion: What are the "
         "10 most common words in the above list?"),
        " Answer: The top 10 words that appear most often in the list are:"),
    "freq_words_extraction": (
        ("Read the following coded text and track the frequency of each coded word. Find the "
         "three most frequently appeared coded words. {context}\nQuestion: Do not provide any "
         "explanation. Please ignore the dots '....'. What are the three most frequently "
         "appeared words in the above coded text?"),
        (" Answer: According to the coded text above, the three most frequently appeared words "
         "are:")),
    "qa": (
        ("Answer the question based on the given documents. Only give me the answer and do not "
         "output any other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer "
         "the question based on the given documents. Only give me the answer and do not output "
         "any other words.\n\nQuestion: {query}"),
        " Answer:"),
}
"""RULER's prompt templates; `{context}` marks where the streamed context goes."""

MEMAGENT_TEMPLATES: dict[str, tuple[str, str]] = {
    # MemAgent's taskutils/memory_data/synthetic/constants.py: no {context} (the memory agent
    # gets the context separately), niah without "I will quiz you ...", vt's "assgined" kept.
    "niah": (
        ("Some special magic {type_needle_v} are hidden within the following text. Make sure to "
         "memorize it. What are all the special magic {type_needle_v} for {query} mentioned in "
         "the provided text?"),
        RULER_TEMPLATES["niah"][1]),
    "variable_tracking": (
        ("Memorize and track the chain(s) of variable assignment hidden in the following text. "
         "Question: Find all variables that are assigned the value {query} in the text above."),
        (" Answer: According to the chain(s) of variable assignment in the text above, {num_v} "
         "variables are assgined the value {query}, they are: ")),
    "common_words_extraction": (
        ("Below is a numbered list of words. In these words, some appear more often than "
         "others. Memorize the ones that appear most often. Question: What are the 10 most "
         "common words in the above list?"),
        RULER_TEMPLATES["common_words_extraction"][1]),
    "freq_words_extraction": (
        ("Read the following coded text and track the frequency of each coded word. Find the "
         "three most frequently appeared coded words. Question: Do not provide any explanation. "
         "Please ignore the dots '....'. What are the three most frequently appeared words in "
         "the above coded text?"),
        RULER_TEMPLATES["freq_words_extraction"][1]),
    "qa": ("Answer the question based on the given documents. {query}", " Answer:"),
}
"""MemAgent's variant of RULER's templates (the question its OOD RULER files carry)."""

_TEMPLATES = {"ruler": RULER_TEMPLATES, "memagent": MEMAGENT_TEMPLATES}


@dataclass(frozen=True)
class Prompt:
    """A RULER task prompt for a memory agent, which sees the context separately.

    Attributes:
        question: the text the agent is asked: RULER's template without its context (the
            text before `{context}`, a space, the text after), or MemAgent's template whole.
        instruction: the template's text before `{context}` ("" for MemAgent's).
        query: the template's text after `{context}` (MemAgent's: the whole question).
        answer_prefix: the template's answer prefix (RULER appends it to the prompt).
    """

    question: str
    instruction: str
    query: str
    answer_prefix: str


def check_template_variant(variant: Any) -> str:
    """Return `variant` if it is one of TEMPLATE_VARIANTS, else raise ConfigError."""
    if variant not in TEMPLATE_VARIANTS:
        raise ConfigError(f"template_variant={variant!r}: expected one of "
                          f"{', '.join(map(repr, TEMPLATE_VARIANTS))} (\"ruler\": NVIDIA/RULER's "
                          "prompts; \"memagent\": MemAgent's copy for its RULER table)")
    return variant


def ruler_prompt(family: str, variant: str = "ruler", *, singular: bool = False,
                 **fields: Any) -> Prompt:
    """Fill RULER task `family`'s template ("niah", "variable_tracking", ..., "qa").

    Args:
        family: a key of RULER_TEMPLATES.
        variant: "ruler" or "memagent".
        singular: niah with one value asked: RULER's rewrite ("Some" -> "A", "are all" ->
            "is", "are" -> "is", "answers" -> "answer", "numbers" -> "number"), applied to the
            template before it is filled, and by RULER to its answer prefix too (MemAgent
            rewrites the template only).
        fields: the template fields (type_needle_v, query, num_v).
    """
    template, prefix = _TEMPLATES[check_template_variant(variant)][family]
    if singular:
        template = _singular(template)
        prefix = _singular(prefix) if variant == "ruler" else prefix
        fields = {**fields, "type_needle_v": fields["type_needle_v"][:-1]}
    prefix = prefix.format(**fields)
    if "{context}" not in template:
        question = template.format(**fields)
        return Prompt(question=question, instruction="", query=question, answer_prefix=prefix)
    before, _, after = template.partition("{context}")
    instruction, query = before.format(**fields).strip(), after.format(**fields).strip()
    return Prompt(question=f"{instruction} {query}", instruction=instruction, query=query,
                  answer_prefix=prefix)


def _singular(text: str) -> str:
    for old, new in (("Some", "A"), ("are all", "is"), ("are", "is"), ("answers", "answer")):
        text = text.replace(old, new)
    return text


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CACHE_SIZE = 4


@dataclass
class _Built:
    pieces: list[str]
    answers: list[str]
    gold: list[str]
    prompt: Prompt
    extra: dict[str, Any]


class RulerTasks(LazyTasks):
    """A lazy, picklable sequence of RULER task instances; instance t is built on access.

    Args:
        task: one of RULER_TASKS.
        num_tasks: how many instances the sequence holds.
        target_tokens: context length per instance, in tokens of `tokenizer`.
        seed: generation seed; instance t depends only on (task, seed, t).
        tokenizer: how tokens are counted (see `memgym.tokenizers.load_token_counter`; None is
            the offline word counter).
        haystack_path: a UTF-8 text file to use as the "essay" haystack (e.g. Paul Graham's
            essays); None writes essay-like filler from a built-in grammar.
        template_variant: the prompt wording, "ruler" (NVIDIA/RULER's) or "memagent"
            (MemAgent's copy for its RULER table; see MEMAGENT_TEMPLATES).

    The last few instances built are cached, so a GRPO group's episodes share one build.
    Construction builds instance 0, so a `target_tokens` too small for the task fails early.
    """

    def __init__(self, task: str, *, num_tasks: int = 100, target_tokens: int = 8192,
                 seed: int = 0, tokenizer: Any = None, haystack_path: str | Path | None = None,
                 template_variant: str = "ruler"):
        check_template_variant(template_variant)
        if task not in RULER_TASKS:
            raise unknown_name("RULER task", task, RULER_TASKS)
        _check_int("num_tasks", num_tasks, 1)
        _check_int("target_tokens", target_tokens, 1)
        _check_int("seed", seed, None)
        if haystack_path is not None and not Path(haystack_path).is_file():
            raise ConfigError(
                f"haystack_path={str(haystack_path)!r} is not a file. Pass a UTF-8 text file "
                "(e.g. Paul Graham's essays) or None for the built-in essay filler."
            )
        self.task = task
        self.num_tasks = num_tasks
        self.target_tokens = target_tokens
        self.seed = seed
        self.counter: TokenCounter = load_token_counter(tokenizer)
        self.haystack_path = None if haystack_path is None else str(haystack_path)
        self.template_variant = template_variant
        self._init_caches()
        self[0]  # fail now, not at the first reset, when the task cannot fit target_tokens

    # -- Sequence protocol ------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.num_tasks

    def build(self, index: int) -> Task:
        """Task `index`, from a small cache of the latest instances (an env re-reads its task)."""
        task = self._cache.get(index)
        if task is None:
            task = self.generate(index)
            self._cache[index] = task
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(index)
        return task

    def __repr__(self) -> str:
        return (f"RulerTasks({self.task!r}, num_tasks={self.num_tasks}, "
                f"target_tokens={self.target_tokens}, seed={self.seed}, "
                f"template_variant={self.template_variant!r}, "
                f"tokenizer={self.counter.name!r})")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_cache", "_file_units", "_counts"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_caches()

    def _init_caches(self) -> None:
        self._cache: OrderedDict[int, Task] = OrderedDict()
        self._file_units: list[str] | None = None
        self._counts: dict[str, int] = {}  # token counts of recurring strings (words, numbers)
        self._sep = _gap_tokens(self.counter, PIECE_SEPARATOR)

    # -- generation -------------------------------------------------------------------------------
    def generate(self, t: int) -> Task:
        """Build instance `t` from (task, seed, t), bypassing the cache."""
        name = f"memgym-ruler:{self.task}:{self.seed}:{t}"
        # The haystack draws from its own stream, so keys, values and the query of instance t are
        # the same at every target length and with every tokenizer.
        rng, hay_rng = random.Random(name), random.Random(name + ":haystack")
        if self.task in _NIAH:
            built = self._niah(_NIAH[self.task], rng, hay_rng)
        elif self.task == "vt":
            built = self._vt(rng)
        else:
            build = self._cwe if self.task == "cwe" else self._fwe
            built = self._fit(lambda budget: build(random.Random(name),
                                                   random.Random(name + ":haystack"), budget))
        tokens = self._measure(built.pieces)
        metadata = {
            "source": "ruler", "ruler_task": self.task, "seed": self.seed,
            "target_tokens": self.target_tokens, "tokens": tokens,
            "tokenizer": self.counter.name, "num_pieces": len(built.pieces),
            "template_variant": self.template_variant,
            "instruction": built.prompt.instruction, "query": built.prompt.query,
            "answer_prefix": built.prompt.answer_prefix, **built.extra,
        }
        return Task(task_id=t, question=built.prompt.question,
                    answers=tuple(built.answers), context=tuple(built.pieces),
                    gold_context=tuple(built.gold), task_type=self.task, scorer=_SCORER,
                    metadata=metadata)

    def _niah(self, spec: _Niah, rng: random.Random, hay_rng: random.Random) -> _Built:
        num_keys = max(spec.num_keys, spec.num_queries)
        keys = _distinct(lambda: _random_needle_part(rng, spec.key_type), num_keys)
        values = [_distinct(lambda: _random_needle_part(rng, spec.value_type), spec.num_values)
                  for _ in keys]
        needles = [(k, NEEDLE.format(type=spec.value_type, key=keys[k], value=v))
                   for k in range(num_keys) for v in values[k]]
        rng.shuffle(needles)
        if spec.haystack == "essay":
            depths = sorted(d / 100 for d in rng.sample(DEPTHS, len(needles)))
        else:
            depths = sorted(rng.random() for _ in needles)
        queried = rng.sample(range(num_keys), spec.num_queries)

        haystack, joiner = self._niah_haystack(spec, hay_rng, set(keys))
        inserts = [(d, text) for d, (_, text) in zip(depths, needles, strict=True)]
        recurring = spec.haystack == "noise" or (spec.haystack == "essay"
                                                 and self.haystack_path is not None)
        pieces, offsets, total = self._assemble(haystack, inserts, joiner, recurring=recurring)

        query_keys = [keys[i] for i in queried]
        query = (", ".join(query_keys[:-1]) + ", and " + query_keys[-1] if len(query_keys) > 1
                 else query_keys[0])
        prompt = ruler_prompt("niah", self.template_variant,
                              singular=spec.num_queries * spec.num_values == 1,
                              type_needle_v=spec.value_type, query=query)
        queried_set = set(queried)
        return _Built(
            pieces=pieces,
            answers=[v for i in queried for v in values[i]],
            gold=[text for k, text in needles if k in queried_set],
            prompt=prompt,
            extra={"haystack": "essay_file" if spec.haystack == "essay" and self.haystack_path
                   else spec.haystack,
                   "needle_depths": [round(100 * o / max(total, 1), 1) for o in offsets]},
        )

    def _niah_haystack(self, spec: _Niah, rng: random.Random, keys: set[str]
                       ) -> tuple[Iterator[str], str]:
        if spec.haystack == "noise":
            return itertools.repeat(NOISE), "\n"
        if spec.haystack == "needle":
            def distractors() -> Iterator[str]:
                while True:
                    key = _random_needle_part(rng, spec.key_type)
                    if key not in keys:  # a distractor must never answer the query
                        yield NEEDLE.format(type=spec.value_type, key=key,
                                            value=_random_needle_part(rng, spec.value_type))
            return distractors(), "\n"
        if self.haystack_path is not None:
            return itertools.cycle(self._load_file_units()), " "
        return essay_sentences(rng), " "

    def _vt(self, rng: random.Random) -> _Built:
        names = _distinct(lambda: "".join(rng.choices(string.ascii_uppercase, k=5)),
                          _VT_CHAINS * (_VT_HOPS + 1))
        values = _distinct(lambda: str(rng.randint(10000, 99999)), _VT_CHAINS)
        chains = []
        for c in range(_VT_CHAINS):
            chain_vars = names[c * (_VT_HOPS + 1):(c + 1) * (_VT_HOPS + 1)]
            statements = [f"VAR {chain_vars[0]} = {values[c]}"]
            statements += [f"VAR {chain_vars[j + 1]} = VAR {chain_vars[j]}"
                           for j in range(_VT_HOPS)]
            chains.append((chain_vars, statements))
        inserts = []
        for _, statements in chains:
            depths = sorted(rng.random() for _ in statements)
            inserts += [(d, text) for d, text in zip(depths, statements, strict=True)]
        pieces, offsets, total = self._assemble(itertools.repeat(NOISE), inserts, "\n",
                                                recurring=True)
        prompt = ruler_prompt("variable_tracking", self.template_variant, query=values[0],
                              num_v=_VT_HOPS + 1)
        return _Built(pieces=pieces, answers=list(chains[0][0]), gold=list(chains[0][1]),
                      prompt=prompt,
                      extra={"needle_depths": [round(100 * o / max(total, 1), 1)
                                               for o in offsets]})

    def _fit(self, build) -> _Built:
        """Build a word list for a token budget, correcting the budget by the measured miss.

        A list's pieces are formed after shuffling, and a BPE tokenizer counts an entry one token
        shorter at a piece's start than after a space, so the estimate can miss by ~2%; one or
        two rebuilds with the miss added to the budget land it. The word counter's estimate is
        exact, so it builds once.
        """
        target = self.target_tokens
        tolerance = max(0.01 * target, 16)
        budget, best, best_miss = target, None, None
        for _ in range(3):
            built = build(budget)
            miss = target - self._measure(built.pieces)
            if best is None or (miss >= 0, -abs(miss)) > (best_miss >= 0, -abs(best_miss)):
                best, best_miss = built, miss
            if 0 <= miss <= tolerance:
                break
            budget += miss if miss > 0 else miss - tolerance / 4  # aim inside, not at the edge
        return best

    def _cwe(self, rng: random.Random, hay_rng: random.Random, budget: int) -> _Built:
        # RULER uses 30/3 repeats, and 6/1 below 4096 tokens so the common words still fit.
        freq_common, freq_rare = (30, 3) if self.target_tokens >= 4096 else (6, 1)
        english = list(ENGLISH_WORDS)
        english_set = set(english)
        rng.shuffle(english)
        vocab = itertools.chain(english, pseudo_words(hay_rng, exclude=english_set))
        words = [next(vocab) for _ in range(_CWE_NUM_COMMON)]
        def count(text: str) -> int:
            # Entries are counted as they appear in the list, after a space. Numbers and English
            # words recur across instances (cached); pseudo-words rarely do.
            text = " " + text
            if text[1].isdigit() or text[1:] in english_set:
                return self._count_cached(text)
            return self.counter.count(text)

        delta = self.counter.count("100.") - count("100.")  # entries start with a number
        n = _CWE_NUM_COMMON * freq_common
        content = (sum(count(f"{i}.") for i in range(1, n + 1))
                   + freq_common * sum(count(w) for w in words))
        if content + self._overhead(content, n, delta) > budget:
            raise ConfigError(
                f"target_tokens={self.target_tokens} is too small for RULER cwe: its "
                f"{_CWE_NUM_COMMON} common words alone take about {content} tokens; use a "
                "larger target_tokens."
            )
        # Add rare words one at a time while the numbered list still fits the target.
        for word in vocab:
            more = (sum(count(f"{i}.") for i in range(n + 1, n + freq_rare + 1))
                    + freq_rare * count(word))
            if content + more + self._overhead(content + more, n + freq_rare, delta) > budget:
                break
            words.append(word)
            content, n = content + more, n + freq_rare
        common = words[:_CWE_NUM_COMMON]
        entries = common * freq_common + words[_CWE_NUM_COMMON:] * freq_rare
        rng.shuffle(entries)
        numbered = [f"{i + 1}. {w}" for i, w in enumerate(entries)]
        costs = [count(f"{i + 1}.") + count(w) for i, w in enumerate(entries)]
        pieces = _group(numbered, costs)
        prompt = ruler_prompt("common_words_extraction", self.template_variant)
        return _Built(pieces=pieces, answers=common, gold=[], prompt=prompt,
                      extra={"num_words": len(words), "freq_common": freq_common,
                             "freq_rare": freq_rare})

    def _fwe(self, rng: random.Random, hay_rng: random.Random, budget: int) -> _Built:
        vocab_size = max(self.target_tokens // 50, 8)  # RULER: max_seq_length // 50
        vocab = _distinct(
            lambda: "".join(rng.choices(string.ascii_lowercase, k=_FWE_WORD_LEN)), vocab_size)
        vocab[0] = "..."  # RULER treats the top-ranked word as noise
        weights = [r ** -_FWE_ALPHA for r in range(1, vocab_size + 1)]
        norm = sum(weights)
        probs = [w / norm for w in weights]
        costs = [self.counter.count(" " + w) for w in vocab]  # as in the text, after a space
        delta = sum(p * (self.counter.count(w) - c)
                    for p, w, c in zip(probs, vocab, costs, strict=True))

        def size(n: int) -> tuple[list[int], float]:
            counts = [int(n * p) for p in probs]
            content = sum(c * t for c, t in zip(counts, costs, strict=True))
            return counts, content + self._overhead(content, sum(counts), delta)

        # Largest word budget n whose text fits: tokens grow monotonically with n.
        lo, hi = 0, max(budget, 1)
        while size(hi)[1] <= budget:
            lo, hi = hi, 2 * hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if size(mid)[1] <= budget else (lo, mid)
        counts, _ = size(lo)
        if counts[3] <= counts[4] or counts[3] == 0:
            raise ConfigError(
                f"target_tokens={self.target_tokens} is too small for RULER fwe: the three most "
                "frequent coded words cannot be told apart from the rest; use at least 256."
            )
        ranks = [r for r, c in enumerate(counts) for _ in range(c)]
        rng.shuffle(ranks)
        text_words = [vocab[r] for r in ranks]
        pieces = _group(text_words, [costs[r] for r in ranks])
        prompt = ruler_prompt("freq_words_extraction", self.template_variant)
        return _Built(pieces=pieces, answers=vocab[1:4], gold=[], prompt=prompt,
                      extra={"vocab_size": vocab_size, "num_words": len(text_words)})

    # -- token accounting -------------------------------------------------------------------------
    def _assemble(self, haystack: Iterable[str], inserts: list[tuple[float, str]], joiner: str,
                  *, recurring: bool = False) -> tuple[list[str], list[int], int]:
        """Interleave haystack units and needles into pieces of at most PIECE_TOKENS tokens.

        `inserts` are (depth in [0, 1], text); a needle of depth d goes in once d of the
        haystack's token budget has been laid down. Haystack units are added while the whole
        context, with the needles still to come, stays within target_tokens. A unit is counted
        as it appears in the context: with its joiner inside a piece, bare at a piece's start
        (a BPE tokenizer counts " word" and "word" differently). `recurring` caches the counts
        of haystack units that repeat (noise lines, file sentences). Returns the pieces, each
        needle's token offset, and the estimated total.
        """
        count = self.counter.count
        unit_count = self._count_cached if recurring else count
        sep = self._sep
        needles = [(d, text, count(joiner + text)) for d, text in sorted(inserts,
                                                                          key=lambda x: x[0])]
        reserve = sum(n + sep for _, _, n in needles)  # worst case: each opens a piece
        budget = self.target_tokens - reserve  # tokens left for the haystack
        if budget < 0:
            raise ConfigError(
                f"target_tokens={self.target_tokens} is too small for RULER {self.task}: its "
                f"needles alone take {reserve} tokens; use at least {reserve + 64}."
            )
        pieces: list[str] = []
        current: list[str] = []
        current_tokens = total = 0
        offsets: list[int] = []

        def push(text: str, inside: int, bare) -> None:
            nonlocal current, current_tokens, total
            if current and current_tokens + inside <= PIECE_TOKENS:
                current.append(text)
                current_tokens += inside
                total += inside
                return
            if current:
                pieces.append(joiner.join(current))
            n = bare(text)
            total += n + (sep if pieces else 0)
            current, current_tokens = [text], n

        i = placed = 0  # needles pushed, and their tokens
        for text in haystack:
            while i < len(needles) and needles[i][0] * budget <= total - placed:
                offsets.append(total)
                before = total
                push(needles[i][1], needles[i][2], count)
                reserve -= needles[i][2] + sep
                placed += total - before
                i += 1
            inside = unit_count(joiner + text)
            if total + inside + sep + reserve > self.target_tokens:
                break
            push(text, inside, unit_count)
        for _, text, n in needles[i:]:
            offsets.append(total)
            push(text, n, count)
        if current:
            pieces.append(joiner.join(current))
        return pieces, offsets, total

    def _overhead(self, content: int, entries: int, start_delta: float) -> float:
        """Estimated tokens that cutting a word list of `entries` entries into pieces adds.

        `content` counts every entry as it reads after a space; a piece instead starts with a
        bare entry (`start_delta` tokens different, e.g. -1 where a tokenizer spells the space
        as a token of its own) and is preceded by a separator. `_group` leaves about half an
        entry unused at the end of each piece.
        """
        if not entries:
            return 0.0
        fill = max(PIECE_TOKENS - content / entries / 2, 1.0)
        pieces = math.ceil(content / fill)
        return self._sep * (pieces - 1) + start_delta * pieces

    def _measure(self, pieces: Sequence[str]) -> int:
        """Tokens of the context as the env streams it: pieces joined by PIECE_SEPARATOR."""
        count = self.counter.count
        return sum(count(p) if i == 0 else count(PIECE_SEPARATOR + p)
                   for i, p in enumerate(pieces))

    def _count_cached(self, text: str) -> int:
        n = self._counts.get(text)
        if n is None:
            n = self._counts[text] = self.counter.count(text)
        return n

    def _load_file_units(self) -> list[str]:
        if self._file_units is None:
            path = Path(self.haystack_path)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"haystack_path={str(path)!r} could not be read as UTF-8 "
                                f"text ({exc})") from exc
            units = [sentence for sentence in _SENTENCE_END.split(" ".join(text.split()))
                     if self.counter.count(sentence) > 0]
            if not units:
                raise DataError(f"haystack_path={str(path)!r} holds no text; pass a file with "
                                "sentences of prose")
            self._file_units = units
        return self._file_units


def ruler_tasks(task: str, *, num_tasks: int = 100, target_tokens: int = 8192, seed: int = 0,
                tokenizer: Any = None, haystack_path: str | Path | None = None,
                template_variant: str = "ruler") -> Sequence[Task]:
    """Generate RULER synthetic task `task` at `target_tokens` context tokens (lazy sequence).

    Args:
        task: niah_single_1/2/3, niah_multikey_1/2/3, niah_multivalue, niah_multiquery, vt,
            cwe or fwe (RULER_TASKS).
        num_tasks: how many instances; instance t is generated from (task, seed, t) only.
        target_tokens: context length per instance, counted with `tokenizer`.
        seed: generation seed.
        tokenizer: a token counter spec (None: the offline word counter; a transformers
            tokenizer id, path or object; a TokenCounter).
        haystack_path: a UTF-8 text file for the essay haystack (niah_single_2/3,
            niah_multikey_1, niah_multivalue, niah_multiquery); ignored by the other tasks.
            None writes essay-like filler instead of RULER's Paul Graham essays.
        template_variant: "ruler" (RULER's prompts) or "memagent" (MemAgent's variant: niah
            without "I will quiz you about the ... afterwards.", "Question: " joined by a space).

    Returns:
        A `RulerTasks` sequence; tasks are scored with `string_match_all`.

    Raises:
        UnknownNameError: `task` is not a RULER task.
        ConfigError: a bad `num_tasks`, `target_tokens`, `seed`, `haystack_path` or
            `template_variant`, or a `target_tokens` too small to hold the task.
    """
    return RulerTasks(task, num_tasks=num_tasks, target_tokens=target_tokens, seed=seed,
                      tokenizer=tokenizer, haystack_path=haystack_path,
                      template_variant=template_variant)


# -- helpers ----------------------------------------------------------------------------------
def _check_int(name: str, value: Any, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r} must be an integer")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value!r} must be at least {minimum}")


def _gap_tokens(counter: TokenCounter, gap: str) -> int:
    """Tokens that joining two sentences with `gap` adds (0 for a space in most tokenizers)."""
    left, right = "end.", "Next"
    return max(0, counter.count(left + gap + right) - counter.count(left) - counter.count(right))


def _group(units: Sequence[str], costs: Sequence[int]) -> list[str]:
    """Join consecutive list entries with spaces into pieces of at most PIECE_TOKENS tokens."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for unit, cost in zip(units, costs, strict=True):
        if current and size + cost > PIECE_TOKENS:
            pieces.append(" ".join(current))
            current, size = [], 0
        current.append(unit)
        size += cost
    if current:
        pieces.append(" ".join(current))
    return pieces


def _random_needle_part(rng: random.Random, kind: str) -> str:
    if kind == "numbers":
        return str(rng.randint(10**6, 10**7 - 1))
    if kind == "words":
        return f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}"
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _distinct(draw, n: int) -> list[str]:
    """`n` distinct values from `draw()`, in draw order."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        value = draw()
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out
