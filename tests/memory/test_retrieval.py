"""Retrieval over memory entries: BM25 on a hand-made case, the real all-MiniLM-L6-v2 encoder
(skipped only when it is not prepared: `memgym models prepare all-minilm-l6-v2`) ranking a
paraphrase first, the embedding cache (hits, misses, UPDATE re-embeds only the changed entry),
the two encoder backends agreeing, deterministic ties, pickling, and loader errors."""

import pickle
from typing import ClassVar

import numpy as np
import pytest

from memgym.errors import ConfigError, UnknownNameError
from memgym.memory import (
    BM25Retriever,
    DenseRetriever,
    MemoryBank,
    MemoryOperation,
    Retriever,
    load_sentence_encoder,
    make_retriever,
)
from memgym.testing.models import needs_models

MINILM = "all-minilm-l6-v2"
torch = pytest.importorskip("torch")


def test_old_import_path_still_gives_the_same_classes():
    from memgym.agents import retrieval as old

    assert old.BM25Retriever is BM25Retriever and old.Retriever is Retriever


def test_bm25_ranks_by_term_overlap_on_a_hand_made_case():
    passages = ["Bob plays the violin in an orchestra",
                "Alice moved to Paris last spring",
                "Alice and Bob had lunch",
                "The weather was rainy all week"]
    assert BM25Retriever().rank("When did Alice move to Paris?", passages, 3)[:2] == [1, 2]
    assert BM25Retriever().rank("violin orchestra", passages, 1) == [0]
    assert BM25Retriever().rank("zzz", passages, 2) == [0, 1]  # no match: stream order


def test_bm25_reuses_the_index_of_unchanged_passages_and_rebuilds_after_an_edit():
    bm25 = BM25Retriever(cached_indexes=2)
    passages = ["Alice moved to Paris", "Bob plays violin"]
    assert bm25.rank("violin", passages, 1) == [1]
    index = bm25._indexes[tuple(passages)]
    assert bm25.rank("Paris", passages, 1) == [0] and bm25._indexes[tuple(passages)] is index
    edited = ["Alice moved to Paris", "Bob plays cello"]
    assert bm25.rank("cello", edited, 1) == [1] and len(bm25._indexes) == 2
    bm25.rank("x", ["a third corpus"], 1)
    assert len(bm25._indexes) == 2 and tuple(passages) not in bm25._indexes
    copy = pickle.loads(pickle.dumps(bm25))
    assert len(copy._indexes) == 0 and copy.rank("cello", edited, 1) == [1]
    assert copy == bm25  # the cache is not part of its identity
    uncached = BM25Retriever(cached_indexes=0)
    assert uncached.rank("violin", passages, 1) == [1] and len(uncached._indexes) == 0


def test_make_retriever_names_and_errors():
    assert isinstance(make_retriever("bm25"), BM25Retriever)
    with pytest.raises(UnknownNameError, match="Did you mean 'dense'"):
        make_retriever("dens")
    with pytest.raises(ConfigError, match="retrieval='dense'"):
        make_retriever("bm25", encoder=MINILM)


class _AxisEncoder:
    """A hand-made encoder for tie and cache tests: texts map to fixed unit vectors by their
    first word; it counts what it is asked to encode."""

    name = "axis"
    AXES: ClassVar[dict[str, list[float]]] = {"red": [1.0, 0.0], "blue": [0.0, 1.0],
                                             "purple": [0.6, 0.8]}

    def __init__(self):
        self.encoded: list[str] = []

    def encode(self, texts):
        self.encoded.extend(texts)
        return np.array([self.AXES[t.split()[0]] for t in texts], dtype=np.float32)


def test_dense_ties_keep_passage_order_and_cache_counts():
    encoder = _AxisEncoder()
    dense = DenseRetriever(encoder)
    passages = ["blue a", "red b", "red c", "purple d", "red b"]
    assert dense.rank("red query", passages, 4) == [1, 2, 4, 3]
    assert encoder.encoded == ["red query", "blue a", "red b", "red c", "purple d"]
    assert (dense.hits, dense.misses) == (0, 6) and dense.cache_size == 5
    assert dense.rank("red query", passages, 2) == [1, 2]
    assert dense.hits == 6 and len(encoder.encoded) == 5  # all cached
    assert dense.rank("x", [], 3) == [] and dense.rank("red", passages, 0) == []


def test_dense_cache_is_bounded_least_recently_used_first():
    dense = DenseRetriever(_AxisEncoder(), max_cache=2)
    dense.embed(["red 1", "blue 2"])
    dense.embed(["red 1"])
    dense.embed(["purple 3"])
    assert dense.cache_size == 2 and "blue 2" not in dense._cache


def test_dense_rejects_bad_encoders_and_cache_sizes():
    with pytest.raises(ConfigError, match="encode"):
        DenseRetriever(42)
    with pytest.raises(ConfigError, match="max_cache"):
        DenseRetriever(_AxisEncoder(), max_cache=0)


def test_loader_errors_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        load_sentence_encoder("./no/such/encoder")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=f"memgym models prepare {MINILM}"):
        load_sentence_encoder(str(tmp_path), backend="transformers")
    with pytest.raises(UnknownNameError, match="transformers"):
        load_sentence_encoder(MINILM, backend="tensorflow")


# ----------------------------------------------------------------------------- the real encoder


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def minilm(one_thread):
    return load_sentence_encoder(MINILM)


@needs_models(MINILM)
def test_real_encoder_ranks_a_paraphrase_above_unrelated_entries(minilm):
    dense = DenseRetriever(minilm)
    passages = ["Quarterly revenue rose by four percent.", "A cat was sitting on a rug.",
                "The train to Berlin leaves at noon."]
    assert dense.rank("The cat sat on the mat.", passages, 3)[0] == 1
    vectors = dense.embed(passages)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@needs_models(MINILM)
def test_update_and_merge_re_embed_only_the_changed_entry(minilm):
    dense = DenseRetriever(minilm)
    bank = MemoryBank(retriever=dense)
    bank.apply([MemoryOperation("ADD", None, t) for t in
                ("Alice lives in Paris.", "Bob adopted a puppy.", "Carol plays chess.")])
    bank.retrieve("Where does Alice live?", 2)
    assert (dense.hits, dense.misses) == (0, 4)
    bank.apply([MemoryOperation("UPDATE", "0", "Alice moved to Rome.")])
    top = bank.retrieve("Where does Alice live?", 1)
    assert (dense.hits, dense.misses) == (3, 5)  # query + 2 unchanged entries hit; 1 new text
    assert top[0].id == "0"
    bank.apply([MemoryOperation("MERGE", "1", "Bob adopted a puppy named Rex.")])
    bank.retrieve("Where does Alice live?", 1)
    assert (dense.hits, dense.misses) == (6, 6)


@needs_models(MINILM)
def test_texts_no_tokenizer_accepts_are_stored_and_embedded_safely(minilm):
    bank = MemoryBank(retriever=DenseRetriever(minilm))
    results = bank.apply_text('{"memory": [{"event": "ADD", "text": "Alice \\udcff likes tea"}]}')
    assert results[0].applied and bank.get("0").text == "Alice ? likes tea"
    assert bank.retrieve("\udcff tea", 1)[0].id == "0"
    assert bank.retriever.embed(["\ud800", "", "\x00"]).shape == (3, 384)


@needs_models(MINILM)
def test_dense_bank_pickles_with_its_cache_and_keeps_results(minilm):
    bank = MemoryBank(retriever=DenseRetriever(MINILM))
    bank.apply([MemoryOperation("ADD", None, t) for t in
                ("Alice lives in Paris.", "Bob adopted a puppy.", "Carol plays chess.")],
               speaker="A")
    before = [e.id for e in bank.retrieve("a new dog", 3)]
    copy = pickle.loads(pickle.dumps(bank))
    assert copy.retriever._encoder is None and copy.retriever.cache_size == 4
    assert [e.id for e in copy.retrieve("a new dog", 3)] == before
    assert copy.retriever.misses == bank.retriever.misses  # all from the pickled cache
    copy.retrieve("someone who plays board games", 1)
    assert copy.retriever._encoder is not None  # reloaded by name for the new query


def test_bm25_bank_pickles_and_keeps_results():
    bank = MemoryBank()
    bank.apply([MemoryOperation("ADD", None, t) for t in
                ("Alice lives in Paris", "Bob adopted a puppy", "Alice plays chess")])
    copy = pickle.loads(pickle.dumps(bank))
    assert copy.retrieve("Alice chess", 3) == bank.retrieve("Alice chess", 3)


@needs_models(MINILM)
@pytest.mark.slow
def test_transformers_pooling_matches_sentence_transformers(minilm):
    pytest.importorskip("sentence_transformers")
    texts = ["The cat sat on the mat.", "Quarterly revenue rose by four percent.", "a"]
    ours = load_sentence_encoder(MINILM, backend="transformers")
    theirs = load_sentence_encoder(MINILM, backend="sentence-transformers")
    assert (ours.pooling, ours.normalize, ours.max_length) == ("mean", True, 256)
    np.testing.assert_allclose(ours.encode(texts), theirs.encode(texts), atol=1e-5)
