"""A disk cache of sentence embeddings, so a run that embeds the same texts again skips the encoder.

`CachedEncoder` wraps any `SentenceEncoder` (an object with `encode(texts) -> [N, D]`). Each
text's row is stored under `$MEMGYM_CACHE/embeddings/<fingerprint>/` (default
`~/.cache/memgym/embeddings`), keyed by the SHA-256 (hex) of the text. The fingerprint names the
*weights*, not the model's name: it is the SHA-256 of the wrapped encoder's own embedding of a
fixed probe sentence (rounded to 5 decimals so thread-count jitter does not split the cache),
plus the dimension. A different model, or the same name pointing at other weights, gets another
folder, so the cache cannot hand back another model's vectors.

Storage: each `encode` call that had misses appends one shard (`<n>.npz`: the texts' hashes and
their float32 rows); a folder is read once per `CachedEncoder`. Shards are written to a temporary
name and renamed, so a run killed mid-write leaves no half shard; two processes filling one
folder at once at worst write the same rows twice.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CachedEncoder", "embedding_cache_dir"]

_PROBE = "memgym embedding cache probe: the quick brown fox jumps over the lazy dog."


def embedding_cache_dir() -> Path:
    """The embeddings cache root: `$MEMGYM_CACHE/embeddings`, else the XDG cache's memgym."""
    from memgym.cache import cache_root

    return cache_root() / "embeddings"


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedEncoder:
    """A sentence encoder whose embeddings are cached on disk by weights and text.

    Args:
        encoder: the encoder to wrap (`encode(texts) -> [N, D]` float32 rows).
        root: the cache root (default `embedding_cache_dir()`).

    Attributes:
        name: the wrapped encoder's name.
        hits, misses: texts served from the cache / encoded, over this object's life.
    """

    def __init__(self, encoder: Any, root: str | Path | None = None):
        self.encoder = encoder
        self.name = str(getattr(encoder, "name", type(encoder).__name__))
        probe = np.asarray(encoder.encode([_PROBE]), dtype=np.float32)            # [1, D]
        digest = hashlib.sha256(np.round(probe, 5).astype(np.float32).tobytes()).hexdigest()
        self.folder = Path(root or embedding_cache_dir()) / f"d{probe.shape[1]}-{digest[:24]}"
        self.dim = int(probe.shape[1])
        self.hits = self.misses = 0
        self._rows: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._rows is None:
            self._rows = {}
            for shard in sorted(self.folder.glob("*.npz")):
                with np.load(shard) as data:
                    for key, row in zip(data["keys"], data["rows"]):
                        self._rows[str(key)] = row
        return self._rows

    def _store(self, keys: list[str], rows: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = self.folder / f".{name}.partial"  # not *.npz: readers never see a half shard
        with open(tmp, "wb") as handle:
            np.savez(handle, keys=np.asarray(keys, dtype="U64"), rows=rows)
        os.replace(tmp, self.folder / f"{name}.npz")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), D] float32 embeddings: cached rows, the rest encoded and stored."""
        cache = self._load()
        keys = [_text_key(str(t)) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in cache))
        if missing:
            index = {k: i for i, k in enumerate(keys)}
            new = np.asarray(self.encoder.encode([str(texts[index[k]]) for k in missing]),
                             dtype=np.float32).reshape(len(missing), self.dim)
            self._store(missing, new)
            cache.update(zip(missing, new))
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([cache[k] for k in keys]).astype(np.float32)
