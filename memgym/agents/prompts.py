"""Prompt templates: named texts with `{field}` slots, rendered with checked fields.

The MemAgent templates reproduce the prompts of MemAgent's release (BytedTsinghua-SIA/MemAgent)
character for character, including the space after `<problem>`:
  - MEMAGENT_UPDATE is its per-chunk `TEMPLATE` (recurrent/impls/memory.py, and the same text in
    taskutils/memory_eval/utils/recurrent.py and recurrent_boxed.py).
  - MEMAGENT_FINAL ("put the answer in \\boxed{}") is its training prompt `TEMPLATE_FINAL_BOXED`
    (recurrent/impls/memory.py), also used by the `recurrent_boxed` eval client and quickstart.py.
  - MEMAGENT_FINAL_ANSWER_IS ('format your response as follows "Therefore, the answer is (insert
    answer here)"') is the `TEMPLATE_FINAL` of the released `recurrent` eval client
    (taskutils/memory_eval/utils/recurrent.py), with which run.py evaluates RL-MemoryAgent-7B/14B.
    Its answers are read by memgym.rewards.extraction's "answer_is" parser.
The MEM1-style and baseline templates are memgym's own, written in the same style so that
comparisons differ in the method, not in the wording.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from memgym.errors import ConfigError, unknown_name

__all__ = [
    "CONTEXT_ANSWER",
    "MEM1_ANSWER",
    "MEM1_UPDATE",
    "MEMAGENT_FINAL",
    "MEMAGENT_FINAL_ANSWER_IS",
    "MEMAGENT_FINAL_TEMPLATES",
    "MEMAGENT_UPDATE",
    "TEMPLATES",
    "PromptTemplate",
    "get_template",
    "register_template",
]


def _fields_of(text: str) -> tuple[str, ...]:
    names = []
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in names:
            if not name.isidentifier():
                raise ConfigError(f"template slot {{{name}}} is not a plain field name; "
                                  "write literal braces as {{ and }}")
            names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt text with `{field}` slots (literal braces doubled, as in `str.format`).

    Attributes:
        name: the name recipes use to pick the template.
        text: the template text.
        fields: the slot names, parsed from `text`.
    """

    name: str
    text: str
    fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _fields_of(self.text))

    def render(self, **values: str) -> str:
        """Fill every slot; a missing or unexpected field is a ConfigError naming it."""
        missing = [f for f in self.fields if f not in values]
        extra = [k for k in values if k not in self.fields]
        if missing or extra:
            raise ConfigError(
                f"template {self.name!r} takes fields {list(self.fields)}; "
                f"missing {missing}, unexpected {extra}"
            )
        return self.text.format_map(values)


MEMAGENT_UPDATE = PromptTemplate("memagent_update", """\
You are presented with a problem, a section of an article that may contain the answer to the \
problem, and a previous memory. Please read the provided section carefully and update the memory \
with the new information that helps to answer the problem. Be sure to retain all relevant details \
from the previous memory while adding any new, useful information.

<problem> 
{question}
</problem>

<memory>
{memory}
</memory>

<section>
{chunk}
</section>

Updated memory:
""")
"""MemAgent's per-chunk memory update prompt (its `TEMPLATE`)."""

MEMAGENT_FINAL = PromptTemplate("memagent_final", """\
You are presented with a problem and a previous memory. Please answer the problem based on the \
previous memory and put the answer in \\boxed{{}}.

<problem> 
{question}
</problem>

<memory>
{memory}
</memory>

Your answer:
""")
"""MemAgent's training final prompt (`TEMPLATE_FINAL_BOXED`, recurrent/impls/memory.py)."""

MEMAGENT_FINAL_ANSWER_IS = PromptTemplate("memagent_final_answer_is", """\
You are presented with a problem and a previous memory. Please answer the problem based on the \
previous memory and format your response as follows "Therefore, the answer is (insert answer \
here)".

<problem> 
{question}
</problem>

<memory>
{memory}
</memory>

Your answer:
""")
"""MemAgent's released-eval final prompt (`TEMPLATE_FINAL`, taskutils/memory_eval/utils/recurrent.py)."""

MEMAGENT_FINAL_TEMPLATES: dict[str, str] = {
    "boxed": "memagent_final", "answer_is": "memagent_final_answer_is",
}
"""MemAgent's final template for each answer format (memgym.rewards.extraction.ANSWER_FORMATS)."""

MEM1_UPDATE = PromptTemplate("mem1_update", """\
You are solving a problem by reading an article one section at a time. You keep a single internal \
state: everything you know and have reasoned so far that helps to answer the problem. Only your \
internal state and the new section are shown to you; everything else is forgotten.

<problem> 
{question}
</problem>

<IS>
{memory}
</IS>

<section>
{chunk}
</section>

Reason about the new section and write your new internal state between <IS> and </IS>. Merge the \
useful facts of the section into the state, keep what still matters, drop what does not.
""")
"""MEM1-style state rewrite: the previous internal state plus the new section -> a new <IS>."""

MEM1_ANSWER = PromptTemplate("mem1_answer", """\
You have read the whole article one section at a time, keeping only your internal state.

<problem> 
{question}
</problem>

<IS>
{memory}
</IS>

Write your final internal state between <IS> and </IS>, then the answer to the problem between \
<answer> and </answer>.
""")
"""MEM1-style final turn: the last internal state -> <IS>...</IS><answer>...</answer>."""

CONTEXT_ANSWER = PromptTemplate("context_answer", """\
You are presented with a problem and an article that may contain the answer to the problem. \
Please read the article carefully, answer the problem based on it and put the answer in \
\\boxed{{}}.

<problem> 
{question}
</problem>

<article>
{context}
</article>

Your answer:
""")
"""Single-call baselines (full context, BM25 retrieval, oracle): answer from a given context."""

TEMPLATES: dict[str, PromptTemplate] = {
    t.name: t for t in (MEMAGENT_UPDATE, MEMAGENT_FINAL, MEMAGENT_FINAL_ANSWER_IS, MEM1_UPDATE,
                         MEM1_ANSWER, CONTEXT_ANSWER)
}
"""Templates by name, as recipes refer to them."""


def register_template(template: PromptTemplate) -> PromptTemplate:
    """Make `template` available to recipes under its name (a name may be registered once)."""
    if template.name in TEMPLATES and TEMPLATES[template.name] != template:
        raise ConfigError(f"a different template named {template.name!r} is already registered")
    TEMPLATES[template.name] = template
    return template


def get_template(name: str, required: tuple[str, ...] = ()) -> PromptTemplate:
    """Look up a template by name and check it has the `required` slots.

    Args:
        name: a key of TEMPLATES.
        required: slots the caller will fill; a template lacking one is a ConfigError.
    """
    if name not in TEMPLATES:
        raise unknown_name("prompt template", name, TEMPLATES)
    template = TEMPLATES[name]
    if set(template.fields) != set(required) and required:
        raise ConfigError(
            f"template {name!r} has slots {list(template.fields)}, but this use fills "
            f"{list(required)}; pick a template with exactly those slots"
        )
    return template
