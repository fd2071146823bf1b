"""Prompts of the dialogue-memory agents: Memory-R1, the mem0-style pipeline and the baselines.

Sources. Memory-R1's own prompts were read in the full text of Yan et al., "Memory-R1" (arXiv
2508.19828 v5, 14 Jan 2026), appendix C, from the `pdftotext -layout` copy of the v5 PDF kept in
github.com/lhl/agentic-memory, references/papers/arxiv-2508.19828.md (commit 78ebe95); mem0's
from mem0ai/mem0 (mem0/configs/prompts.py, evaluation/prompts.py). The appendix says its
manager, answer and judge prompts "adapt elements from the prompt released by prior work"
(MemGPT, mem0).

  - Fact extraction: the paper's appendix gives no extraction prompt (its Algorithm 3 only
    calls `LLMExtract(t_i)`), so this is mem0's `FACT_RETRIEVAL_PROMPT` (a "Personal
    Information Organizer" that returns `{"facts": [...]}` with few-shot examples), adapted.
  - Memory manager (MEMORY_MANAGER; MEM0_UPDATE shares its rules): the instructions and the
    four examples are Memory-R1's Figures 9-10 (appendix C.1) word for word, punctuation in
    ASCII; they are mem0's `DEFAULT_UPDATE_MEMORY_PROMPT` lightly edited. As in the figures the
    no-change event is written `NONE` (the paper's text calls it NOOP; the env reads NONE as
    NOOP). The figures end before the part that shows the memories and the facts, so that
    closing is memgym's after mem0's `get_update_memory_messages`.
  - Answer agent (MEMORY_R1_ANSWER): Memory-R1's Figure 11 (appendix C.2) word for word:
    instructions 1-10 (9: select the useful memories and output them first, the "memory
    distillation"; 10: the final answer after `**Answer:**`), the 8-step approach, then the
    memories per speaker ("Memories for user John:", "- <timestamp>: <memory>",
    `memgym.memory.format_memories(..., "memory_r1")`) and the question.
  - mem0's plain answer step (DIALOGUE_ANSWER): mem0's LoCoMo `ANSWER_PROMPT`, adapted.

Where these depart, and why:
  1. Facts are written with the speaker's name as subject ("Caroline moved to Paris", not
     mem0's "Moved to Paris"): one bank holds both speakers of a LoCoMo conversation (mem0's
     own LoCoMo run asks for names too, in its `custom_instructions`). mem0's lines about
     "today's date", revealing the prompt and "publicly available sources" are dropped: they
     address a chat product, not a benchmark; the session date is given instead.
  2. Memory-R1's manager closing (memgym's) asks for one operation per new fact (the paper,
     sec. 3.1: one of ADD, UPDATE, DELETE, NOOP "for each new piece of information"); mem0's
     (MEM0_UPDATE, the mem0-style baseline) asks, as mem0 does, for the whole memory with NONE
     for unchanged entries. The figures' examples show both forms; the env keeps what is not
     named. The paper's "generate a new ID" for ADD is kept, but the bank assigns ids itself.
  3. Only the text after `**Answer:**` is the action (`memgym.agents.memory_r1.extract_answer`).
     Figure 11's instruction 7 ends at "Do not confuse character names" in the paper; it is
     kept so (mem0's goes on "... with the actual users who created those memories").
  4. The extraction few-shot examples are memgym's own, in mem0's form, about two named
     speakers.
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

_MANAGER_RULES = """\
You are a smart memory manager which controls the memory of a system.
You can perform four operations: (1) add into the memory, (2) update the memory, (3) delete \
from the memory, and (4) no change.

Based on the above four operations, the memory will change.

Compare newly retrieved facts with the existing memory. For each new fact, decide whether to:
- ADD: Add it to the memory as a new element
- UPDATE: Update an existing memory element
- DELETE: Delete an existing memory element
- NONE: Make no change (if the fact is already present or irrelevant)

1. **Add**: If the retrieved facts contain new information not present in the memory, then you \
have to add it by generating a new ID in the id field.
- Example:
    Old Memory:
        [
            {{"id" : "0", "text" : "User is a software engineer"}}
        ]
    Retrieved facts: ["Name is John"]
    New Memory:
        {{
            "memory" : [
                {{"id" : "0", "text" : "User is a software engineer", "event" : "NONE"}},
                {{"id" : "1", "text" : "Name is John", "event" : "ADD"}}
            ]
        }}

2. **Update**: If the retrieved facts contain information that is already present in the memory \
but the information is totally different, then you have to update it.
If the retrieved fact contains information that conveys the same thing as the memory, keep the \
version with more detail.
Example (a) - if the memory contains "User likes to play cricket" and the retrieved fact is \
"Loves to play cricket with friends", then update the memory with the retrieved fact.
Example (b) - if the memory contains "Likes cheese pizza" and the retrieved fact is "Loves \
cheese pizza", then do NOT update it because they convey the same information.
Important: When updating, keep the same ID and preserve old_memory.
- Example:
    Old Memory:
        [
            {{"id" : "0", "text" : "I really like cheese pizza"}},
            {{"id" : "2", "text" : "User likes to play cricket"}}
        ]
    Retrieved facts: ["Loves chicken pizza", "Loves to play cricket with friends"]
    New Memory:
        {{
        "memory" : [
            {{"id" : "0", "text" : "Loves cheese and chicken pizza", "event" : "UPDATE", \
"old_memory" : "I really like cheese pizza"}},
            {{"id" : "2", "text" : "Loves to play cricket with friends", "event" : "UPDATE", \
"old_memory" : "User likes to play cricket"}}
        ]
        }}

3. **Delete**: If the retrieved facts contain information that contradicts the memory, delete \
it. When deleting, return the same IDs - do not generate new IDs.
- Example:
    Old Memory:
        [
            {{"id" : "1", "text" : "Loves cheese pizza"}}
        ]
    Retrieved facts: ["Dislikes cheese pizza"]
    New Memory:
        {{
        "memory" : [
            {{"id" : "1", "text" : "Loves cheese pizza", "event" : "DELETE"}}
        ]
        }}

4. **No Change**: If the retrieved facts are already present, make no change.
- Example:
    Old Memory:
        [
            {{"id" : "0", "text" : "Name is John"}}
        ]
    Retrieved facts: ["Name is John"]
    New Memory:
        {{
        "memory" : [
            {{"id" : "0", "text" : "Name is John", "event" : "NONE"}}
        ]
        }}

Below is the current content of the memory (the entries related to the new facts):

```
{memories}
```

The new retrieved facts are in the triple backticks. """

MEMORY_MANAGER = register_template(PromptTemplate("dialogue_memory_manager", _MANAGER_RULES + """\
Decide one operation for each of them.

```
{facts}
```

Return your response in this JSON structure only, one item per new fact:

{{"memory": [{{"id": "<id of the memory>", "text": "<content of the memory>", \
"event": "ADD|UPDATE|DELETE|NONE", "old_memory": "<old content, only for UPDATE>"}}]}}

Do not return anything except the JSON."""))
"""Memory manager (Memory-R1 v5 appendix C.1, Figures 9-10, which adapt mem0's
DEFAULT_UPDATE_MEMORY_PROMPT; the closing with the memories, the facts and one operation per
fact is memgym's, as the figures end before it): related memories + facts -> Memory-R1 JSON."""

MEM0_UPDATE = register_template(PromptTemplate("mem0_update_memory", _MANAGER_RULES + """\
Decide whether they should be added, updated or deleted in the memory.

```
{facts}
```

Return your response in this JSON structure only, the whole updated memory: every existing \
memory (with NONE when unchanged) and every new one:

{{"memory": [{{"id": "<id of the memory>", "text": "<content of the memory>", \
"event": "ADD|UPDATE|DELETE|NONE", "old_memory": "<old content, only for UPDATE>"}}]}}

Do not return anything except the JSON."""))
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

MEMORY_R1_ANSWER = register_template(PromptTemplate("memory_r1_answer", """\
You are an intelligent memory assistant tasked with retrieving accurate information from \
conversation memories.

# CONTEXT:
You have access to memories from two speakers in a conversation. These memories contain \
timestamped information that may be relevant to answering the question.

# INSTRUCTIONS:
1. Carefully analyze all provided memories from both speakers
2. Pay special attention to the timestamps to determine the answer
3. If the question asks about a specific event or fact, look for direct evidence
4. If the memories contain contradictory information, prioritize the most recent memory
5. If there is a question about time references (like "last year", "two months ago"), \
calculate the actual date based on the memory timestamp.
6. Always convert relative time references to specific dates, months, or years.
7. Focus only on the content of the memories. Do not confuse character names
8. The answer should be less than 5-6 words.
9. IMPORTANT: Select memories you found that are useful for answering the questions, and \
output it before you answer questions.
10. IMPORTANT: Output the final answer after **Answer:**

# APPROACH (Think step by step):
1. Examine all relevant memories
2. Examine the timestamps carefully
3. Look for explicit mentions that answer the question
4. Convert relative references if needed
5. Formulate a concise answer
6. Double-check the answer correctness
7. Ensure the final answer is specific
8. First output the memories that you found are important before you answer questions

{memories}

Question: {question}
"""))
"""Memory-R1 answer agent (Memory-R1 v5 appendix C.2, Figure 11, word for word): selected
memories first ("memory distillation"), then `**Answer:**` and a short answer."""

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
