"""Retrieval over memory texts: the `Retriever` protocol, BM25 (bm25s) and dense retrieval
through a real sentence encoder.

    >>> from memgym.memory.retrieval import make_retriever
    >>> bm25 = make_retriever("bm25")                       # offline default
    >>> dense = make_retriever("dense", encoder="all-minilm-l6-v2")
    >>> dense.rank("where does Alice live?", ["Alice lives in Paris", "Bob likes tea"], k=1)
    [0]

A retriever ranks the passages it is given at query time (`rank(query, passages, k)`), so the
memory bank stays the one owner of its entries. `DenseRetriever` caches embeddings keyed by
text: an entry changed by UPDATE or MERGE has a new text, so only it is embedded again.

Sentence encoders load through `load_sentence_encoder`: memgym's named model
(`all-minilm-l6-v2`), a local folder or a hub id, all resolved by `memgym.models`. With
sentence-transformers installed (`pip install memgym[dense]`) it encodes; otherwise plain
transformers does, with the pooling the model's `1_Pooling/config.json` names and the
normalisation its `modules.json` lists. There is no random fallback: an encoder that cannot be
loaded is an error that says how to make it present.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from memgym.errors import ConfigError, unknown_name

__all__ = [
    "RETRIEVERS",
    "BM25Retriever",
    "DenseRetriever",
    "Retriever",
    "SentenceEncoder",
    "SentenceTransformersEncoder",
    "TransformersSentenceEncoder",
    "load_sentence_encoder",
    "make_retriever",
    "shared_retriever",
]

RETRIEVERS = ("bm25", "dense")
"""The retriever names `make_retriever` accepts."""

DEFAULT_ENCODER = "all-minilm-l6-v2"
"""The sentence encoder dense retrieval uses when none is named (memgym's named MiniLM)."""


@runtime_checkable
class Retriever(Protocol):
    """Ranks passages for a query."""

    def rank(self, query: str, passages: Sequence[str], k: int) -> list[int]:
        """Indices of the `k` best passages for `query`, best first."""
        ...


def encodable(text: str) -> str:
    """`text` with lone surrogates (which JSON escapes such as "\\udcff" produce and no
    tokenizer or UTF-8 file accepts) replaced by "?"; any other text is returned unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _top_k(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the `k` highest scores, best first; ties keep passage order (stable)."""
    order = np.argsort(-scores, kind="stable")
    return [int(i) for i in order[:k]]


@dataclass(frozen=True)
class BM25Retriever:
    """BM25 ranking with the `bm25s` library, over the passages given at query time.

    The index is built from the passages of the call, and the last few indexes are kept, keyed
    by the passages themselves: the questions asked of an unchanged memory bank reuse one
    index, and any edit of the bank (new passages) builds a fresh one. Ties (e.g. passages
    sharing no term with the query) keep stream order, so the ranking is deterministic.

    Args:
        k1, b: BM25 parameters (bm25s/Lucene defaults).
        method: the bm25s scoring variant ("lucene", "robertson", "atire", "bm25l", "bm25+").
        stopwords: the stopword list name given to `bm25s.tokenize` ("en") or None.
        cached_indexes: how many indexes to keep (0: build one per call). Not pickled.
    """

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    stopwords: str | None = "en"
    cached_indexes: int = 4
    _indexes: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False,
                                  compare=False, hash=False)

    def _index(self, passages: tuple[str, ...]) -> Any:
        """The bm25s index of `passages` (None when they have no terms), built or cached."""
        import bm25s

        if passages in self._indexes:
            self._indexes.move_to_end(passages)
            return self._indexes[passages]
        corpus = bm25s.tokenize(list(passages), stopwords=self.stopwords, show_progress=False)
        index = None
        if corpus.vocab:
            index = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)  # empty passages divide by zero
                index.index(corpus, show_progress=False)
        if self.cached_indexes > 0:
            self._indexes[passages] = index
            while len(self._indexes) > self.cached_indexes:
                self._indexes.popitem(last=False)
        return index

    def rank(self, query: str, passages: Sequence[str], k: int) -> list[int]:
        """Indices of the top-`k` passages by BM25 score, best first."""
        import bm25s

        k = min(k, len(passages))
        if k <= 0:
            return []
        index = self._index(tuple(passages))
        terms = bm25s.tokenize(query, stopwords=self.stopwords, show_progress=False,
                               return_ids=False)[0]
        if index is None or not terms:  # nothing to match on: keep stream order
            return list(range(k))
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            scores = np.nan_to_num(np.asarray(index.get_scores(terms), dtype=np.float64))
        return _top_k(scores, k)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_indexes"] = OrderedDict()  # rebuilt on demand; indexes are derived data
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)


# ----------------------------------------------------------------------------- encoders


@runtime_checkable
class SentenceEncoder(Protocol):
    """Turns texts into unit-length embedding rows (cosine similarity = dot product)."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts`, one L2-normalised float32 row each: [len(texts), dim]."""
        ...


_POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                  "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens":
                  "mean_sqrt_len"}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _pooling_of(folder: Path) -> tuple[str, bool, int | None]:
    """The pooling mode, whether to normalise, and the max sequence length a
    sentence-transformers folder declares (mean, normalise, no limit when it declares none)."""
    modules = _read_json(folder / "modules.json")
    pooling_dir, normalize = "1_Pooling", True
    if isinstance(modules, list):
        types = [str(m.get("type", "")) for m in modules if isinstance(m, dict)]
        normalize = any(t.endswith("Normalize") for t in types)
        for m in modules:
            if isinstance(m, dict) and str(m.get("type", "")).endswith("Pooling"):
                pooling_dir = str(m.get("path") or pooling_dir)
    config = _read_json(folder / pooling_dir / "config.json")
    mode = "mean"
    if isinstance(config, dict):
        if isinstance(config.get("pooling_mode"), str):
            mode = config["pooling_mode"]
        else:
            chosen = [v for key, v in _POOLING_MODES.items() if config.get(key)]
            if len(chosen) > 1:
                raise ConfigError(f"{folder / pooling_dir / 'config.json'} asks for several "
                                  f"poolings {chosen}; memgym's transformers encoder supports "
                                  "one: install sentence-transformers (`pip install "
                                  "memgym[dense]`) to load this model")
            mode = chosen[0] if chosen else mode
    if mode not in _POOLING_MODES.values():
        raise ConfigError(f"pooling mode {mode!r} of {folder} is not one memgym's transformers "
                          f"encoder implements ({', '.join(_POOLING_MODES.values())}); install "
                          "sentence-transformers (`pip install memgym[dense]`)")
    bert = _read_json(folder / "sentence_bert_config.json")
    max_len = bert.get("max_seq_length") if isinstance(bert, dict) else None
    return mode, normalize, max_len if isinstance(max_len, int) and max_len > 0 else None


class TransformersSentenceEncoder:
    """A sentence encoder on plain transformers: the model's last hidden states, pooled the way
    its sentence-transformers config says (MiniLM: mean over the attention mask), normalised.

    Args:
        path: a folder (or hub id) `AutoModel.from_pretrained` loads.
        name: how the encoder is named in logs and errors.
        device: the torch device.
        batch_size: texts per forward pass.
    """

    def __init__(self, path: str, *, name: str = "", device: str = "cpu", batch_size: int = 64):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.name = name or path
        self.device, self.batch_size = device, batch_size
        folder = Path(path)
        self.pooling, self.normalize, self.max_length = (
            _pooling_of(folder) if folder.is_dir() else ("mean", True, None))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(device).eval()
        if self.max_length is None:
            limit = getattr(self.model.config, "max_position_embeddings", 512)
            self.max_length = int(min(limit, 512))
        self._torch = torch

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts`: [len(texts), dim] float32, unit rows when the model normalises."""
        torch = self._torch
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True,
                                   truncation=True, max_length=self.max_length,
                                   return_tensors="pt").to(self.device)
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state  # [B, T, D]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
            if self.pooling == "cls":
                pooled = hidden[:, 0]  # [B, D]
            elif self.pooling == "max":
                pooled = hidden.masked_fill(mask == 0, -1e9).max(dim=1).values  # [B, D]
            else:
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # [B, D]
                if self.pooling == "mean_sqrt_len":
                    pooled = pooled * mask.sum(1).clamp(min=1e-9) / mask.sum(1).sqrt()
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            rows.append(pooled.float().cpu().numpy())
        dim = self.model.config.hidden_size
        return np.concatenate(rows) if rows else np.zeros((0, dim), dtype=np.float32)


class SentenceTransformersEncoder:
    """A sentence encoder on the sentence-transformers library (its own modules and pooling),
    normalised so cosine similarity is a dot product.

    Args:
        path: a folder or hub id `SentenceTransformer` loads.
        name: how the encoder is named in logs and errors.
        device: the torch device.
        batch_size: texts per forward pass.
    """

    def __init__(self, path: str, *, name: str = "", device: str = "cpu", batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        self.name = name or path
        self.batch_size = batch_size
        self.model = SentenceTransformer(path, device=device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts`: [len(texts), dim] float32 unit rows."""
        out = self.model.encode(list(texts), batch_size=self.batch_size,
                                normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)


ENCODER_BACKENDS = ("auto", "sentence-transformers", "transformers")
"""How `load_sentence_encoder` may encode: auto = sentence-transformers when installed."""


def _has_sentence_transformers() -> bool:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


def load_sentence_encoder(name_or_path: str = DEFAULT_ENCODER, *, backend: str = "auto",
                          device: str = "cpu", batch_size: int = 64) -> SentenceEncoder:
    """Load a real sentence encoder: memgym's named model, a local folder or a hub id.

    Args:
        name_or_path: `all-minilm-l6-v2` (after `memgym models prepare all-minilm-l6-v2`), a
            folder, or a hub id (resolved by `memgym.models.resolve_model_path`).
        backend: "auto" (sentence-transformers when installed, else transformers),
            "sentence-transformers" or "transformers".
        device: the torch device.
        batch_size: texts per forward pass.

    Raises:
        ConfigError: the model is not present or cannot be loaded, or the backend is unknown
            or missing; the message says the fix. Never falls back to random vectors.
    """
    from memgym.models import resolve_model_path

    if backend not in ENCODER_BACKENDS:
        raise unknown_name("encoder backend", str(backend), ENCODER_BACKENDS)
    if batch_size <= 0:
        raise ConfigError(f"encoder batch_size must be positive, got {batch_size}")
    path = resolve_model_path(name_or_path)
    use_st = backend == "sentence-transformers" or (backend == "auto"
                                                    and _has_sentence_transformers())
    if backend == "sentence-transformers" and not _has_sentence_transformers():
        raise ConfigError("encoder backend 'sentence-transformers' is not installed: "
                          "`pip install memgym[dense]`, or use backend='transformers'")
    cls = SentenceTransformersEncoder if use_st else TransformersSentenceEncoder
    try:
        return cls(path, name=name_or_path, device=device, batch_size=batch_size)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"sentence encoder {name_or_path!r} (from {path}) could not be loaded "
                          f"with {cls.__name__}: {type(exc).__name__}: {exc}. Give a sentence "
                          "encoder folder or hub id, or run `memgym models prepare "
                          f"{DEFAULT_ENCODER}` and use {DEFAULT_ENCODER!r}") from exc


# ----------------------------------------------------------------------------- dense retrieval


class DenseRetriever:
    """Cosine-similarity ranking with a sentence encoder, embeddings cached by text.

    Every text it has embedded (passages and queries) is kept in an LRU cache keyed by the
    text itself, so a memory bank's unchanged entries are never embedded twice, and an entry
    changed by UPDATE or MERGE (a new text) is the only one embedded again. Missing texts are
    embedded in one batch per `rank` call. Ties keep passage order.

    The encoder is loaded at construction (so a missing model fails at once) and is not
    pickled: a pickled retriever keeps its name and its cache, and loads the encoder again when
    it next has to embed a text it has not seen.

    Args:
        encoder: a name, folder or hub id for `load_sentence_encoder`, or a loaded
            `SentenceEncoder`.
        backend, device, batch_size: passed to `load_sentence_encoder` for a named encoder.
        max_cache: the most embeddings kept (least recently used ones go first).

    Attributes:
        hits, misses: texts found in / missing from the cache, counted over `rank` calls.
    """

    def __init__(self, encoder: str | SentenceEncoder = DEFAULT_ENCODER, *, backend: str = "auto",
                 device: str = "cpu", batch_size: int = 64, max_cache: int = 100_000):
        if max_cache <= 0:
            raise ConfigError(f"DenseRetriever max_cache must be positive, got {max_cache}")
        if isinstance(encoder, str):
            self.encoder_spec: str | None = encoder
            self._encoder: SentenceEncoder | None = load_sentence_encoder(
                encoder, backend=backend, device=device, batch_size=batch_size)
        elif isinstance(encoder, SentenceEncoder):
            self.encoder_spec, self._encoder = None, encoder
        else:
            raise ConfigError(f"DenseRetriever encoder must be a model name, folder, hub id or "
                              f"an object with encode(texts); got {type(encoder).__name__}")
        self._load_args = {"backend": backend, "device": device, "batch_size": batch_size}
        self.max_cache = max_cache
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # shared by the envs of a process, stepped on threads
        self.hits = 0
        self.misses = 0

    @property
    def encoder(self) -> SentenceEncoder:
        """The sentence encoder (loaded again after unpickling, on first need)."""
        if self._encoder is None:
            if self.encoder_spec is None:
                raise ConfigError("this DenseRetriever was pickled with an encoder object, "
                                  "which does not travel: build it with an encoder name or path")
            self._encoder = load_sentence_encoder(self.encoder_spec, **self._load_args)
        return self._encoder

    @property
    def cache_size(self) -> int:
        """How many embeddings the cache holds."""
        return len(self._cache)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts` ([len(texts), dim]), from the cache where present; the missing
        ones are encoded in one batch (each distinct text once) and cached."""
        with self._lock:
            return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        self.misses += sum(t not in self._cache for t in texts)
        self.hits += sum(t in self._cache for t in texts)
        if missing:
            vectors = np.asarray(self.encoder.encode([encodable(t) for t in missing]),
                                 dtype=np.float32)
            for text, vector in zip(missing, vectors):
                self._cache[text] = vector
        rows = []
        for text in texts:
            self._cache.move_to_end(text)
            rows.append(self._cache[text])
        while len(self._cache) > self.max_cache:
            self._cache.popitem(last=False)
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def rank(self, query: str, passages: Sequence[str], k: int) -> list[int]:
        """Indices of the top-`k` passages by cosine similarity to `query`, best first."""
        k = min(k, len(passages))
        if k <= 0:
            return []
        vectors = self.embed([query, *passages])  # [1 + N, D]
        scores = vectors[1:] @ vectors[0]  # [N]
        return _top_k(np.asarray(scores, dtype=np.float64), k)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_encoder"] = None  # the model is reloaded by name; the cache travels
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


_SHARED: dict[tuple[str, str], Retriever] = {}
_SHARED_LOCK = threading.Lock()


def shared_retriever(kind: str = "bm25", *, encoder: str | SentenceEncoder | None = None
                     ) -> Retriever:
    """`make_retriever(kind, encoder=encoder)`, but one dense retriever per process and encoder
    name: the envs of a pool (32 in a training run) share its encoder and embedding cache
    instead of loading 32 encoders with 32 caches. A BM25 retriever (no model) and a dense one
    over an encoder object are built anew, as `make_retriever` does."""
    if kind != "dense" or not (encoder is None or isinstance(encoder, str)):
        return make_retriever(kind, encoder=encoder)
    key = (kind, DEFAULT_ENCODER if encoder is None else encoder)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = make_retriever(kind, encoder=key[1])
        return _SHARED[key]


def make_retriever(kind: str = "bm25", *, encoder: str | SentenceEncoder | None = None,
                   **kwargs: Any) -> Retriever:
    """Build a retriever by name: "bm25" (offline default) or "dense" (a sentence encoder,
    `all-minilm-l6-v2` unless `encoder` names another). `kwargs` go to its constructor."""
    if kind == "bm25":
        if encoder is not None:
            raise ConfigError("retrieval='bm25' takes no encoder; use retrieval='dense' to "
                              f"retrieve with {encoder!r}")
        return BM25Retriever(**kwargs)
    if kind == "dense":
        return DenseRetriever(DEFAULT_ENCODER if encoder is None else encoder, **kwargs)
    raise unknown_name("retriever", str(kind), RETRIEVERS)
