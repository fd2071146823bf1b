"""`memgym.memory.embedding_cache.CachedEncoder`: rows come back from disk, keyed by weights and text."""

import numpy as np

from memgym.agents.rmm import HashingEncoder
from memgym.memory.embedding_cache import CachedEncoder


class CountingEncoder:
    """A real (hashing) encoder that records how many texts it was asked to embed."""

    def __init__(self, dim: int = 64):
        self.inner, self.name, self.texts = HashingEncoder(dim), f"hash:{dim}", 0

    def encode(self, texts):
        self.texts += len(texts)
        return self.inner.encode(texts)


def test_second_encoder_reads_the_rows_from_disk_instead_of_encoding(tmp_path):
    texts = ["Caroline: I went to a LGBTQ support group.", "Melanie: I painted a lake.", ""]
    first = CountingEncoder()
    rows = CachedEncoder(first, root=tmp_path).encode(texts)
    assert first.texts == 1 + 3                        # the probe, then every text once
    again = CountingEncoder()
    cached = CachedEncoder(again, root=tmp_path)
    np.testing.assert_array_equal(cached.encode(texts[::-1]), rows[::-1])
    assert again.texts == 1 and cached.hits == 3 and cached.misses == 0
    np.testing.assert_array_equal(rows, HashingEncoder(64).encode(texts))


def test_only_new_texts_are_encoded_and_duplicates_once(tmp_path):
    enc = CountingEncoder()
    cached = CachedEncoder(enc, root=tmp_path)
    cached.encode(["a b", "c d"])
    out = cached.encode(["c d", "e f", "e f"])
    assert enc.texts == 1 + 2 + 1 and out.shape == (3, 64)
    np.testing.assert_array_equal(out[1], out[2])


def test_other_weights_get_another_folder(tmp_path):
    small = CachedEncoder(CountingEncoder(64), root=tmp_path)
    large = CachedEncoder(CountingEncoder(128), root=tmp_path)
    assert small.folder != large.folder
    assert large.encode(["x y"]).shape == (1, 128)


def test_empty_input_gives_an_empty_matrix(tmp_path):
    assert CachedEncoder(CountingEncoder(), root=tmp_path).encode([]).shape == (0, 64)
