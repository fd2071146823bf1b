"""memgym's one cache root, under which prepared models (`models/`) and datasets (`data/`) live."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """`$MEMGYM_CACHE`, else `$XDG_CACHE_HOME/memgym`, else `~/.cache/memgym` (not created)."""
    root = os.environ.get("MEMGYM_CACHE", "").strip()
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
        root = str(Path(xdg) / "memgym") if xdg else "~/.cache/memgym"
    return Path(root).expanduser()
