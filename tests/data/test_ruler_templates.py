"""RULER's prompt templates and MemAgent's variant, byte for byte.

The expected strings are written out here (from NVIDIA/RULER's
scripts/data/synthetic/constants.py and MemAgent's taskutils/memory_data/synthetic/constants.py);
where the upstream mirrors are on disk they are also read and compared. Rendering is checked
against a re-implementation of what RULER's and MemAgent's niah.py / prepare scripts do.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import gymnasium as gym
import pytest

import memgym  # noqa: F401  (registers the env ids)
from memgym.data.ruler import (
    MEMAGENT_TEMPLATES,
    RULER_TEMPLATES,
    ruler_prompt,
    ruler_tasks,
)
from memgym.data.squad import squad_tasks
from memgym.errors import ConfigError

RULER = {
    "niah": ("Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} mentioned in the provided text?",
             " The special magic {type_needle_v} for {query} mentioned in the provided text are"),
    "variable_tracking": ("Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: Find all variables that are assigned the value {query} in the text above.",
                          " Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are assigned the value {query}, they are: "),
    "common_words_extraction": ("Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?",
                                " Answer: The top 10 words that appear most often in the list are:"),
    "freq_words_extraction": ("Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text?",
                              " Answer: According to the coded text above, the three most frequently appeared words are:"),
    "qa": ("Answer the question based on the given documents. Only give me the answer and do not output any other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}",
           " Answer:"),
}
MEMAGENT = {
    "niah": ("Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. What are all the special magic {type_needle_v} for {query} mentioned in the provided text?",
             " The special magic {type_needle_v} for {query} mentioned in the provided text are"),
    "variable_tracking": ("Memorize and track the chain(s) of variable assignment hidden in the following text. Question: Find all variables that are assigned the value {query} in the text above.",
                          " Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are assgined the value {query}, they are: "),
    "common_words_extraction": ("Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often. Question: What are the 10 most common words in the above list?",
                                " Answer: The top 10 words that appear most often in the list are:"),
    "freq_words_extraction": ("Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. Question: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text?",
                              " Answer: According to the coded text above, the three most frequently appeared words are:"),
    "qa": ("Answer the question based on the given documents. {query}", " Answer:"),
}
MIRRORS = Path("/work/.mirror")
UPSTREAM = {"ruler": (MIRRORS / "NVIDIA+RULER" / "repo", "scripts/data/synthetic/constants.py"),
            "memagent": (MIRRORS / "BytedTsinghua-SIA+MemAgent" / "repo",
                         "taskutils/memory_data/synthetic/constants.py")}
FAMILY = {"vt": "variable_tracking", "cwe": "common_words_extraction",
          "fwe": "freq_words_extraction"}


def upstream_tasks(which: str) -> dict[str, tuple[str, str]]:
    repo, path = UPSTREAM[which]
    if not repo.is_dir():
        pytest.skip(f"{repo} is not on disk")
    source = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"], check=True,
                            capture_output=True, text=True).stdout
    tasks = ast.literal_eval(source[source.index("{", source.index("TASKS")):])
    return {name: (spec["template"], spec["answer_prefix"]) for name, spec in tasks.items()}


def test_templates_are_rulers_and_memagents_byte_for_byte():
    assert RULER_TEMPLATES == RULER
    assert MEMAGENT_TEMPLATES == MEMAGENT


@pytest.mark.parametrize("which, ours", [("ruler", RULER_TEMPLATES),
                                         ("memagent", MEMAGENT_TEMPLATES)])
def test_templates_equal_the_upstream_files_on_disk(which, ours):
    assert upstream_tasks(which) == ours


def reference_question(variant: str, family: str, singular: bool = False, **fields) -> str:
    """What RULER / MemAgent ask, minus the context (RULER: the parts around it, one space)."""
    template, _ = (RULER if variant == "ruler" else MEMAGENT)[family]
    if singular:  # niah.py: rewrite the raw template, then drop the "s" of the type
        for old, new in (("Some", "A"), ("are all", "is"), ("are", "is"), ("answers", "answer")):
            template = template.replace(old, new)
        fields["type_needle_v"] = fields["type_needle_v"][:-1]
    if "{context}" not in template:
        return template.format(**fields)
    before, after = template.format(context="\0", **fields).split("\0")
    return f"{before.strip()} {after.strip()}"


@pytest.mark.parametrize("variant", ["ruler", "memagent"])
@pytest.mark.parametrize("name", ["niah_single_1", "niah_multivalue", "niah_multiquery",
                                  "vt", "cwe", "fwe"])
def test_task_questions_render_the_upstream_template(name, variant):
    task = ruler_tasks(name, num_tasks=1, target_tokens=1024, template_variant=variant)[0]
    meta = task.metadata
    assert meta["template_variant"] == variant
    if name.startswith("niah"):
        query = re.search(r"for (.+) mentioned in the provided text\?$", task.question)[1]
        expected = reference_question(variant, "niah", singular=name == "niah_single_1",
                                      type_needle_v="numbers", query=query)
    elif name == "vt":
        value = task.gold_context[0].split(" = ")[1]  # the chain's first statement
        expected = reference_question(variant, "variable_tracking", query=value, num_v=5)
    else:
        expected = reference_question(variant, FAMILY[name])
    assert task.question == expected
    if name in ("vt", "cwe", "fwe"):
        assert " Question: " in task.question  # RULER's prefix, missing before


def test_memagent_niah_drops_the_quiz_sentence_and_ruler_keeps_it():
    ruler = ruler_prompt("niah", "ruler", type_needle_v="numbers", query="red-fox")
    memagent = ruler_prompt("niah", "memagent", type_needle_v="numbers", query="red-fox")
    assert "I will quiz you about the numbers afterwards." in ruler.question
    assert "quiz" not in memagent.question
    assert memagent.question == ("Some special magic numbers are hidden within the following "
                                 "text. Make sure to memorize it. What are all the special magic "
                                 "numbers for red-fox mentioned in the provided text?")


def test_singular_rewrite_applies_before_filling_so_keys_keep_their_letters():
    prompt = ruler_prompt("niah", "ruler", singular=True, type_needle_v="numbers",
                          query="rare-square")
    assert prompt.question == ("A special magic number is hidden within the following text. "
                               "Make sure to memorize it. I will quiz you about the number "
                               "afterwards. What is the special magic number for rare-square "
                               "mentioned in the provided text?")
    # RULER rewrites its answer prefix too; MemAgent fills its prefix unrewritten
    assert prompt.answer_prefix.endswith("rare-square mentioned in the provided text is")
    memagent = ruler_prompt("niah", "memagent", singular=True, type_needle_v="numbers",
                            query="rare-square")
    assert memagent.answer_prefix.endswith("rare-square mentioned in the provided text are")


@pytest.mark.parametrize("variant, expected", [
    ("memagent", "Answer the question based on the given documents. {q}"),
    ("ruler", ("Answer the question based on the given documents. Only give me the answer and do "
              "not output any other words.\n\nThe following are given documents. Answer the "
              "question based on the given documents. Only give me the answer and do not output "
              "any other words.\n\nQuestion: {q}")),
    ("plain", "{q}")])
def test_squad_question_follows_the_template_variant(variant, expected):
    task = squad_tasks(None, num_docs=20, limit=2, template_variant=variant)[1]
    question = task.metadata["squad_question"]
    assert task.question == expected.format(q=question)
    if variant != "plain":
        assert task.question == reference_question(variant, "qa", query=question)
    assert task.metadata["template_variant"] == variant


def test_squad_env_defaults_to_memagents_qa_wording_and_ruler_envs_to_rulers():
    squad = gym.make("MemAgent-SQuAD-v0", num_docs=20).unwrapped.tasks[0]
    assert squad.question.startswith("Answer the question based on the given documents. ")
    assert squad.metadata["template_variant"] == "memagent"
    vt = gym.make("MemAgent-RULER-VT-v0", num_tasks=1, target_tokens=1024).unwrapped.tasks[0]
    assert vt.metadata["template_variant"] == "ruler"
    vt = gym.make("MemAgent-RULER-VT-v0", num_tasks=1, target_tokens=1024,
                  template_variant="memagent").unwrapped.tasks[0]
    assert vt.metadata["template_variant"] == "memagent"


def test_unknown_template_variant_names_the_choices():
    with pytest.raises(ConfigError, match="template_variant='rular'.*'ruler'.*'memagent'"):
        ruler_tasks("vt", num_tasks=1, target_tokens=1024, template_variant="rular")
    with pytest.raises(ConfigError, match="template_variant='rular'"):
        squad_tasks(None, num_docs=20, template_variant="rular")
