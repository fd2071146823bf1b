"""Prompts of the dialogue-memory agents: Memory-R1, the mem0-style pipeline and the baselines.

Written for memgym after the papers' and mem0's prompts (read, not copied):

  - Fact extraction: mem0's `FACT_RETRIEVAL_PROMPT` (mem0/configs/prompts.py): a "Personal
    Information Organizer" that returns `{"facts": [...]}` with few-shot examples. Memory-R1
    (Yan et al., 2025, sec. 3 and appendix) keeps mem0's extraction step in front of its manager.
  - Memory manager: mem0's `DEFAULT_UPDATE_MEMORY_PROMPT` + `get_update_memory_messages` (the
    old memories as a JSON list of {"id", "text"}, the new facts, the answer as
    `{"memory": [{"id", "text", "event", "old_memory"?}]}`), which Memory-R1's manager prompt
    follows with the event set ADD / UPDATE / DELETE / NOOP.
  - Answer agent: mem0's LoCoMo answer prompt (evaluation/prompts.py `ANSWER_PROMPT`, memories
    of the two speakers with timestamps, "less than 5-6 words"), which Memory-R1's answer agent
    extends with memory distillation: first output the memories it selected, then the answer.

Where these depart, and why:
  1. Facts are written with the speaker's name as subject ("Caroline moved to Paris", not
     mem0's "Moved to Paris"): one bank holds both speakers of a LoCoMo conversation (mem0's
     own LoCoMo run asks for names too, in its `custom_instructions`). mem0's lines about
     "today's date", revealing the prompt and "publicly available sources" are dropped: they
     address a chat product, not a benchmark; the session date is given instead.
  2. Memory-R1's manager prompt (MEMORY_MANAGER) asks for one operation per new fact
     (Memory-R1: "one operation per extracted fact") with NOOP; mem0's (MEM0_UPDATE, the
     mem0-style baseline) keeps mem0's form, the whole memory returned with NONE for unchanged
     entries. Old memories that no fact touches may be left out: the env keeps what is not
     named. mem0's "generate a new ID" for ADD is kept in the wording, but the bank assigns ids
     itself and ignores the one proposed. mem0's three further few-shot blocks (one per event)
     are folded into one example with UPDATE, DELETE and ADD, to keep the prompt within a small
     model's window (SmolLM2: 8,192 tokens).
  3. The Memory-R1 answer prompt ends with `**Answer:**` on its own line; only the text after
     it is the action (`memgym.agents.memory_r1.extract_answer`). mem0's "show your work" step
     is replaced by the selection step (Memory-R1's distillation).
  4. The few-shot examples are memgym's own, in mem0's form, about two named speakers.
"""

from __future__ import annotations

from memgym.agents.prompts import PromptTemplate, register_template

__all__ = [
    "DIALOGUE_ANSWER",
    "DIALOGUE_CONTEXT_ANSWER",
    "DIALOGUE_TEMPLATES",
    "FACT_EXTRACTION",
    "MEM0_UPDATE",
    "MEMORY_MANAGER",
    "MEMORY_R1_ANSWER",
]

FACT_EXTRACTION = register_template(PromptTemplate("dialogue_fact_extraction", """\
You are a Personal Information Organizer, specialized in accurately storing facts, memories \
and preferences of the people in a conversation. Your role is to extract the relevant pieces \
of information from the new message and write them as distinct, self-contained facts, so that \
they can be retrieved later. Focus on:

1. Personal preferences: likes, dislikes and specific preferences (food, products, activities, \
entertainment).
2. Important personal details: names, relationships, places, important dates.
3. Plans and intentions: upcoming events, trips, goals.
4. Activities and services: dining, travel, hobbies.
5. Health and wellness: dietary restrictions, fitness routines.
6. Professional details: job titles, work habits, career goals.
7. Miscellaneous: favourite books, movies, brands, and other details people share.

Write each fact with the person's name as its subject, never "user" or "I", and turn relative \
times ("yesterday", "last year") into dates using the session date.

Here are some few shot examples:

Message: Anna: Hi!
Output: {{"facts": []}}

Message: Ben: There are branches in trees.
Output: {{"facts": []}}

Message: Anna: I moved to Lisbon last month, and I started working as a nurse there.
Output: {{"facts": ["Anna moved to Lisbon in April 2023", "Anna works as a nurse in Lisbon"]}}

Message: Ben: My favourite films are Inception and Interstellar.
Output: {{"facts": ["Ben's favourite films are Inception and Interstellar"]}}

Return the facts in JSON as shown above: an object with the key "facts" and a list of strings. \
If the message holds nothing worth remembering, return an empty list. Do not return anything \
from the examples above.

Session date: {date}
Message: {dialogue}
Output:"""))
"""Fact extraction (mem0's FACT_RETRIEVAL_PROMPT, adapted): one turn -> {"facts": [...]}."""

MEMORY_MANAGER = register_template(PromptTemplate("dialogue_memory_manager", """\
You are a smart memory manager which controls the memory of a system. You can perform four \
operations: (1) add into the memory, (2) update the memory, (3) delete from the memory, and \
(4) no change.

Compare the newly retrieved facts with the existing memory. For each new fact, decide whether to:
- ADD: add it to the memory as a new element (give it a new id);
- UPDATE: update an existing memory element (keep its id), when the fact is about the same \
thing but the information is different or richer; keep the text with the most information;
- DELETE: delete an existing memory element (its id), when the fact contradicts it;
- NOOP: make no change, when the fact is already present or irrelevant.

Use only ids of the existing memory for UPDATE, DELETE and NOOP; never invent one.

Example:
- Old memory: [{{"id": "0", "text": "Anna likes to play tennis"}}, \
{{"id": "1", "text": "Anna lives in Porto"}}]
- Retrieved facts: ["Anna loves to play tennis with friends", "Anna moved to Lisbon", \
"Anna has a dog called Rex"]
- Output: {{"memory": [
    {{"id": "0", "text": "Anna loves to play tennis with friends", "event": "UPDATE", \
"old_memory": "Anna likes to play tennis"}},
    {{"id": "1", "text": "Anna lives in Porto", "event": "DELETE"}},
    {{"id": "2", "text": "Anna has a dog called Rex", "event": "ADD"}}]}}
(a move to Lisbon could also UPDATE memory 1 to "Anna lives in Lisbon").

Below is the current content of the memory (the entries related to the new facts):

```
{memories}
```

The new retrieved facts are in the triple backticks. Decide one operation for each of them.

```
{facts}
```

Return your response in this JSON structure only, one item per new fact:

{{"memory": [{{"id": "<id of the memory>", "text": "<content of the memory>", \
"event": "ADD|UPDATE|DELETE|NOOP", "old_memory": "<old content, only for UPDATE>"}}]}}

Do not return anything except the JSON."""))
"""Memory manager (mem0's DEFAULT_UPDATE_MEMORY_PROMPT + get_update_memory_messages, with
Memory-R1's NOOP and one operation per fact): related memories + facts -> Memory-R1 JSON."""

MEM0_UPDATE = register_template(PromptTemplate("mem0_update_memory", MEMORY_MANAGER.text
    .replace("- NOOP: make no change", "- NONE: make no change")
    .replace("UPDATE, DELETE and NOOP", "UPDATE, DELETE and NONE")
    .replace("Decide one operation for each of them.",
             "Decide whether they should be added, updated or deleted in the memory.")
    .replace('"event": "ADD|UPDATE|DELETE|NOOP"', '"event": "ADD|UPDATE|DELETE|NONE"')
    .replace("one item per new fact:", "the whole updated memory: every existing memory (with "
             "NONE when unchanged) and every new one:")))
"""mem0's update step as mem0 runs it: the whole memory returned, unchanged items as NONE."""

_ANSWER_RULES = """\
You are an intelligent memory assistant tasked with retrieving accurate information from \
conversation memories.

# CONTEXT:
You have access to memories from two speakers in a conversation. These memories contain \
timestamped information that may be relevant to answering the question.

# INSTRUCTIONS:
1. Carefully analyze all provided memories from both speakers.
2. Pay special attention to the timestamps to determine the answer.
3. If the question asks about a specific event or fact, look for direct evidence in the memories.
4. If the memories contain contradictory information, prioritize the most recent memory.
5. If there is a question about time references (like "last year", "two months ago"), \
calculate the actual date based on the memory timestamp: a memory from 4 May 2022 that \
mentions "went to India last year" means the trip was in 2021.
6. Always convert relative time references to specific dates, months or years.
7. Focus only on the content of the memories. Do not confuse names mentioned in the memories \
with the speakers who created them.
8. The answer should be less than 5-6 words.
"""

MEMORY_R1_ANSWER = register_template(PromptTemplate("memory_r1_answer", _ANSWER_RULES + """\

# APPROACH:
1. First select the memories that are useful for answering the question, and write them out \
(memory distillation).
2. Then, on a new line, write **Answer:** followed by the answer in a few words.

{memories}

Question: {question}
"""))
"""Memory-R1 answer agent: selected memories first, then `**Answer:**` and a short answer."""

DIALOGUE_ANSWER = register_template(PromptTemplate("dialogue_answer", _ANSWER_RULES + """\

{memories}

Question: {question}

Answer:"""))
"""mem0's answer step (and RAG over turns): memories of both speakers -> a short answer."""

DIALOGUE_CONTEXT_ANSWER = register_template(PromptTemplate("dialogue_context_answer", """\
You are given (part of) a conversation between two speakers, with the date of each session. \
Answer the question from it. If the question is about a time, give a specific date, month or \
year. The answer should be less than 5-6 words.

{context}

Question: {question}

Answer:"""))
"""Full context and the evidence oracle: conversation turns -> a short answer."""

DIALOGUE_TEMPLATES = (FACT_EXTRACTION, MEMORY_MANAGER, MEM0_UPDATE, MEMORY_R1_ANSWER, DIALOGUE_ANSWER,
                      DIALOGUE_CONTEXT_ANSWER)
"""The templates this module registers (recipes name them)."""
