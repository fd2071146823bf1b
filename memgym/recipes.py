"""The shipped agent and training recipes, found by name from any folder.

    >>> find_recipe("memagent", "agents")        # the shipped agents/memagent.yaml
    >>> find_recipe("runs/mine.yaml", "agents")  # a path is taken as it is
    >>> shipped_recipes("train")                 # {"quickstart": Path(...), ...}

One source: the top-level `agents/` and `train/` folders of the repository (where users read and
copy them). A wheel carries the same files under `memgym/_recipes/` (copied at build time by
`setup.py`); a checkout or an editable install reads the folders themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

from memgym.errors import ConfigError

__all__ = ["FOLDERS", "find_recipe", "recipe_summary", "shipped_dir", "shipped_recipes"]

FOLDERS = ("agents", "train")
"""The shipped recipe folders: agent recipes and training recipes."""

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(folder: str) -> Path | None:
    """Where the shipped recipes of `folder` ("agents" or "train") are, or None if nowhere."""
    if folder not in FOLDERS:
        raise ValueError(f"folder must be one of {FOLDERS}, not {folder!r}")
    packaged = _PACKAGE / "_recipes" / folder  # a wheel install
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE.parent  # a checkout, or an editable install of one
    if (checkout / "pyproject.toml").is_file() and (checkout / folder).is_dir():
        return checkout / folder
    return None


def shipped_recipes(folder: str) -> dict[str, Path]:
    """The shipped recipes of `folder` by name (the file's stem), sorted."""
    where = shipped_dir(folder)
    if where is None:
        return {}
    return {p.stem: p for p in sorted(where.glob("*.yaml"))}


def find_recipe(recipe: str | Path, folder: str) -> Path:
    """The recipe file `recipe` names: an existing path, or a shipped recipe's name.

    A name is a shipped recipe's stem ("memagent") or its repository path ("agents/memagent.yaml"
    from another folder than the checkout's root).

    Raises:
        ConfigError: neither a file nor a shipped recipe; the message lists the shipped ones.
    """
    path = Path(recipe)
    if path.is_file():
        return path
    shipped = shipped_recipes(folder)
    name = path.stem if path.suffix in (".yaml", ".yml") else path.name
    if name in shipped and path.parts in ((name,), (f"{name}.yaml",), (folder, f"{name}.yaml")):
        return shipped[name]
    listing = ", ".join(shipped) or "(none found: this install carries no recipes)"
    raise ConfigError(f"recipe file not found: {recipe} (the shipped {folder} recipes, by name: "
                      f"{listing}; `memgym agents` lists them)")


def recipe_summary(path: Path, width: int = 110) -> str:
    """A recipe's one-line summary: the first clause of its leading comment, asides dropped."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if not text and lines:
            break
        lines.append(text)
    summary = " ".join(lines)
    while True:  # drop parenthesised asides (citations, examples), innermost first
        shorter = re.sub(r"\s*\([^()]*\)", "", summary)
        if shorter == summary:
            break
        summary = shorter
    summary = re.split(r"(?<=[.:;])\s", summary, maxsplit=1)[0].rstrip(".:;")
    return summary if len(summary) <= width else summary[:width - 1].rstrip() + "…"
