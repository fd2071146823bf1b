"""Hand-made tasks and a rule-based LLM shared by the agent and eval tests (not a test module)."""

import re

from memgym.data.task import Task
from memgym.envs import LongContextMemoryEnv
from memgym.llm import Completion, ScriptedBackend

FILLER = [f"Document {i}:\nTitle {i}\n" + " ".join(f"w{i}x{j}" for j in range(40))
          for i in range(10)]
NEEDLE = "Document 4:\nLuna\nThe cat Luna lives in Paris with her owner."
PIECES = FILLER[:4] + [NEEDLE] + FILLER[5:]


def make_tasks():
    """Two tasks: the answer sits in one document among filler (gold context = that document)."""
    return [
        Task(0, "Where does the cat Luna live?", ("Paris",), PIECES, gold_context=(NEEDLE,),
             task_type="single", metadata={"num_docs": len(PIECES)}),
        Task(1, "Who owns the red car?", ("Ann Lee",),
             FILLER[:3] + ["Document 3:\nCars\nThe red car belongs to Ann Lee."],
             gold_context=("Document 3:\nCars\nThe red car belongs to Ann Lee.",),
             task_type="single", metadata={"num_docs": 4}),
    ]


def make_env(**kwargs):
    """The long-context env on the hand-made tasks, with small chunks (several per task)."""
    kwargs.setdefault("chunk_tokens", 120)
    kwargs.setdefault("memory_tokens", 40)
    return LongContextMemoryEnv(make_tasks(), **kwargs)


def reader(request):
    """A rule-based 'model' that behaves like a memory agent on the hand-made tasks.

    Update prompts: remembers sentences naming a fact ("lives in", "belongs to") from the
    section, else repeats the previous memory. Answer prompts: answers from what it sees.
    """
    text = request.messages[-1]["content"] if request.messages else request.prompt
    facts = re.findall(r"[^.\n]*(?:lives in|belongs to)[^.\n]*\.", text)
    if "Updated memory:" in text or "<IS>" in text and "<section>" in text:
        memory = re.search(r"<(?:memory|IS)>\n(.*?)\n</(?:memory|IS)>", text, re.DOTALL).group(1)
        new = " ".join(facts) if facts else memory
        return f"<IS>{new}</IS>" if "<IS>" in text else new
    if "Paris" in text:
        answer = "Paris"
    elif "Ann Lee" in text:
        answer = "Ann Lee"
    else:
        answer = "unknown"
    if "<answer>" in text:
        return f"<IS>done</IS><answer>{answer}</answer>"
    return f"The answer is \\boxed{{{answer}}}."


def reader_backend(**kwargs):
    """A ScriptedBackend running `reader`."""
    return ScriptedBackend(reader, **kwargs)


def failing_on(question_part, error="server said no", raise_it=True):
    """A reader that fails every call whose prompt mentions `question_part`."""
    def policy(request):
        text = request.messages[-1]["content"]
        if question_part in text:
            if raise_it:
                raise RuntimeError(error)
            return Completion("", finish_reason="error", error=error)
        return reader(request)
    return policy
