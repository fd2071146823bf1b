"""Build step only (metadata lives in pyproject.toml): the wheel carries the shipped recipes.

The top-level `agents/*.yaml` and `train/**.yaml` are the one source users read and copy; a
wheel gets the same files under `memgym/_recipes/` so `memgym eval --agent memagent` and
`memgym train quickstart` work after `pip install` (memgym.recipes finds them there, or in the
checkout for an editable install).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RECIPES = {"agents": ("*.yaml",), "train": ("*.yaml", "accelerate/*.yaml")}


class BuildWithRecipes(build_py):
    """build_py, then copy the recipe folders into the built package."""

    def run(self) -> None:
        super().run()
        for folder, patterns in RECIPES.items():
            for pattern in patterns:
                for source in sorted((ROOT / folder).glob(pattern)):
                    target = Path(self.build_lib) / "memgym" / "_recipes" / folder / \
                        source.relative_to(ROOT / folder)
                    self.mkpath(str(target.parent))
                    self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithRecipes})
