"""Custom-environment authoring: the generated catalog of envs/README.md and `memgym envs new`.

    memgym envs catalog --write      # regenerate the catalog in envs/README.md from the registry
    memgym envs catalog --check      # exit 2 if it is stale (the test suite runs the same check)
    memgym envs new my-task          # write a package skeleton that passes its own tests

The catalog lists memgym's own ids (entry points under `memgym.`); ids that outside packages
register through the `memgym.envs` entry point group are machine-specific, so `memgym envs`
lists them live instead of the committed file.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from memgym.errors import ConfigError

__all__ = ["CATALOG_END", "CATALOG_START", "catalog_markdown", "check_catalog", "new_env_package",
           "write_catalog"]

CATALOG_START, CATALOG_END = "<!-- catalog:start -->", "<!-- catalog:end -->"
"""The markers around the generated part of envs/README.md."""


def _own_ids() -> list[str]:
    import gymnasium as gym

    import memgym  # noqa: F401  (registers the ids)
    from memgym.envs.registration import ENV_DESCRIPTIONS

    own = [i for i, spec in gym.registry.items() if str(spec.entry_point).startswith("memgym.")]
    order = {env_id: n for n, env_id in enumerate(ENV_DESCRIPTIONS)}
    return sorted(own, key=lambda i: (order.get(i, len(order)), i))


def catalog_markdown() -> str:
    """The catalog table of every memgym-registered id: id, description, factory, fixed kwargs."""
    import gymnasium as gym

    from memgym.envs.registration import ENV_DESCRIPTIONS

    lines = ["| id | what | factory | registered kwargs |", "|---|---|---|---|"]
    for env_id in _own_ids():
        spec = gym.registry[env_id]
        kwargs = ", ".join(f"{k}={v!r}" for k, v in sorted(spec.kwargs.items())) or "-"
        factory = str(spec.entry_point).split(":")[-1]
        blurb = ENV_DESCRIPTIONS.get(env_id, "").replace("|", "\\|")
        lines.append(f"| `{env_id}` | {blurb} | `{factory}` | {kwargs} |")
    return (f"{len(lines) - 2} ids, generated from the registry by `memgym envs catalog --write` "
            "(do not edit by hand).\n\n" + "\n".join(lines) + "\n")


def _splice(text: str, block: str, path: Path) -> str:
    if CATALOG_START not in text or CATALOG_END not in text:
        raise ConfigError(f"{path}: no {CATALOG_START} ... {CATALOG_END} markers; add them where "
                          "the catalog goes")
    start, end = text.index(CATALOG_START), text.index(CATALOG_END) + len(CATALOG_END)
    return text[:start] + f"{CATALOG_START}\n{block}{CATALOG_END}" + text[end:]


def write_catalog(path: str | Path) -> bool:
    """Regenerate the catalog between the markers of `path`; returns whether the file changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = _splice(text, catalog_markdown(), path)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def check_catalog(path: str | Path) -> str | None:
    """None if the catalog in `path` matches the registry, else what to run to fix it."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if _splice(text, catalog_markdown(), path) == text:
        return None
    return f"{path}: the env catalog is stale; run `memgym envs catalog --write`"


# -- `memgym envs new` ------------------------------------------------------------------------
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def _names(name: str) -> dict[str, str]:
    if not _NAME.match(name):
        raise ConfigError(f"envs new {name!r}: use lowercase letters, digits and single hyphens, "
                          "starting with a letter (e.g. my-task)")
    module = name.replace("-", "_")
    if keyword.iskeyword(module) or module in ("memgym", "gymnasium", "test", "tests"):
        raise ConfigError(f"envs new {name!r}: {module!r} cannot be the package name; choose "
                          "another")
    camel = "".join(part.capitalize() for part in name.split("-"))
    return {"name": name, "module": module, "env_id": f"{camel}-v0"}


_INIT = '''"""{name}: a memgym memory task (written by `memgym envs new {name}`; edit freely).

`import memgym` registers `{env_id}` through the `memgym.envs` entry point once this package is
installed (`pip install -e .`); without installing, importing this package registers it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

ENV_ID = "{env_id}"
DATA = Path(__file__).parent / "data" / "tasks.jsonl"
"""The example tasks shipped with the package (replace them with yours)."""


def make_env(data_path: str | None = None, **env_kwargs: Any):
    """The env: each task's documents streamed in chunks into an overwrite memory, then its question.

    Args:
        data_path: a JSONL file of tasks (see `{module}.tasks.load_tasks`); default: DATA.
        **env_kwargs: `memgym.envs.long_context.LongContextMemoryEnv` arguments (chunk_tokens,
            memory_tokens, scorer, answer_format, reward_weights, tokenizer, ...).
    """
    from memgym.envs.long_context import LongContextMemoryEnv

    from {module}.tasks import load_tasks

    path = Path(data_path) if data_path is not None else DATA
    env_kwargs.setdefault("chunk_tokens", 64)
    env_kwargs.setdefault("memory_tokens", 64)
    return LongContextMemoryEnv(load_tasks(path), source=f"{name} {{path}}", **env_kwargs)


def register() -> dict[str, str]:
    """Register `{env_id}` with Gymnasium (idempotent); the `memgym.envs` entry point calls it."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="{module}:make_env")
    return {{ENV_ID: "{name}: questions over documents from a JSONL file"}}


register()  # importing the package registers the id too (`memgym eval --env {module}:{env_id}`)
'''

_TASKS = '''"""The task source of {name}: one JSON object per line, read into memgym Tasks.

Each line: {{"question": str, "answers": [str, ...] (or one str), "documents": [str or
{{"title": str, "text": str}}, ...]}}. A bad line is a DataError naming the file, line and field.
"""

from __future__ import annotations

import json
from pathlib import Path

from memgym.data.task import Document, Task, render_document
from memgym.errors import DataError


def _pieces(documents: object, where: str) -> list[str]:
    if not isinstance(documents, list) or not documents:
        raise DataError(f"{{where}}: field 'documents' must be a non-empty list")
    pieces = []
    for i, doc in enumerate(documents, 1):
        if isinstance(doc, str):
            doc = {{"title": f"Document {{i}}", "text": doc}}
        if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
            raise DataError(f"{{where}}: documents[{{i - 1}}] must be a string or "
                            "{{title, text}}")
        pieces.append(render_document(i, Document(str(doc.get("title", "")), doc["text"])))
    return pieces


def load_tasks(path: str | Path) -> list[Task]:
    """Every task of a JSONL file, in file order (task ids 0, 1, ...)."""
    path = Path(path)
    tasks: list[Task] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{{path}}:{{number}}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{{where}}: not JSON ({{exc.msg}})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise DataError(f"{{where}}: field 'question' must be a string")
        answers = row.get("answers")
        answers = [answers] if isinstance(answers, str) else answers
        if not isinstance(answers, list) or not answers or not all(
                isinstance(a, str) for a in answers):
            raise DataError(f"{{where}}: field 'answers' must be a string or a list of strings")
        tasks.append(Task(task_id=len(tasks), question=row["question"], answers=tuple(answers),
                          context=_pieces(row.get("documents"), where),
                          task_type=str(row.get("type", "")),
                          metadata={{"source": "{name}"}}))
    if not tasks:
        raise DataError(f"{{path}}: holds no tasks")
    return tasks
'''

_DATA = [
    {"question": "What colour is the lighthouse on Gull Island?", "answers": ["red"],
     "documents": [{"title": "Gull Island", "text": "The lighthouse on Gull Island is painted "
                    "red and was built in 1871."},
                   "The harbour café serves fish soup on Fridays.",
                   "Ferries leave the mainland twice a day in summer."]},
    {"question": "Which day does the harbour café serve fish soup?", "answers": ["Friday",
                                                                                 "Fridays"],
     "documents": ["The lighthouse keeper retired in 1950.",
                   {"title": "Harbour café", "text": "The harbour café serves fish soup on "
                    "Fridays and closes in winter."},
                   "The island has no cars."]},
    {"question": "How many times a day do ferries leave in summer?", "answers": ["twice"],
     "documents": ["Seals rest on the northern rocks.",
                   "Ferries leave the mainland twice a day in summer and once in winter.",
                   "The café owner also runs the post office."]},
]

_TEST = '''"""{name} passes memgym's environment checker and scores a correct answer 1 (generated)."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import {module}
from memgym.errors import DataError
from memgym.testing import check_memgym_env


@pytest.fixture(autouse=True, scope="module")
def registered():
    {module}.register()  # what the entry point does at `import memgym` once installed


def test_env_passes_the_memgym_checker():
    env = gym.make({module}.ENV_ID)
    check_memgym_env(env)
    env.close()


def test_every_task_is_solvable_from_its_documents():
    env = gym.make({module}.ENV_ID, memory_tokens=512)
    for task_id in range(env.unwrapped.num_tasks):
        obs, _ = env.reset(seed=0, options={{"task_id": task_id}})
        memory, done = "", False
        while obs["phase"] == "update":  # keep every chunk: the memory is large enough here
            memory += obs["chunk"]
            obs, *_ = env.step(memory)
        gold = env.unwrapped.task.answers[0]
        _, reward, done, _, info = env.step("\\\\boxed{{" + gold + "}}")
        assert done and info["reward_components"]["accuracy"] == 1.0, task_id


def test_a_row_without_a_question_is_a_data_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({{"answers": ["x"], "documents": ["y"]}}) + "\\n")
    with pytest.raises(DataError, match="bad.jsonl:1: field 'question'"):
        gym.make({module}.ENV_ID, data_path=str(path))
'''

_PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
description = "{name}: a memgym memory environment"
requires-python = ">=3.10"
dependencies = ["memgym"]

# `import memgym` calls {module}.register(), so `gym.make("{env_id}")` works after it
[project.entry-points."memgym.envs"]
{name} = "{module}:register"

[tool.setuptools.packages.find]
include = ["{module}*"]

[tool.setuptools.package-data]
{module} = ["data/*.jsonl"]
'''

_README = '''# {name}

A memgym memory environment, `{env_id}`: each task's documents are streamed in chunks into an
overwrite memory, then the agent answers the question from its memory (scored by sub_em).

    pip install -e .                 # registers {env_id} at `import memgym` (entry point)
    python -m pytest tests           # or, without installing: PYTHONPATH=. python -m pytest tests
    memgym eval --env {env_id} --agent agents/memagent.yaml ...

Replace `{module}/data/tasks.jsonl` with your tasks (or pass `data_path=`), and the checker in
`tests/` keeps the env honest. See memgym's envs/README.md for the authoring guide.
'''


def new_env_package(name: str, dest: str | Path = ".", overwrite: bool = False) -> Path:
    """Write the skeleton of an outside env package `dest/name`; returns its folder.

    The package holds a JSONL task source, a factory and `register()` (declared under the
    `memgym.envs` entry point group), example data and tests that pass as generated.

    Raises:
        ConfigError: a bad name, or the folder exists (without `overwrite`).
    """
    import json

    names = _names(name)
    root = Path(dest) / name
    if root.exists() and not overwrite:
        raise ConfigError(f"{root} exists; choose another name or folder (or overwrite=True)")
    module = root / names["module"]
    (module / "data").mkdir(parents=True, exist_ok=True)
    (root / "tests").mkdir(exist_ok=True)
    files: dict[Path, str] = {
        root / "pyproject.toml": _PYPROJECT.format(**names),
        root / "README.md": _README.format(**names),
        module / "__init__.py": _INIT.format(**names),
        module / "tasks.py": _TASKS.format(**names),
        module / "data" / "tasks.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                 for r in _DATA),
        root / "tests" / f"test_{names['module']}.py": _TEST.format(**names),
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return root

