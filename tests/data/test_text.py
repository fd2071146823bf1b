"""Token-bounded text tools (memgym.data.text): lossless passage splitting, middle truncation;
the agents' module re-exports the same functions."""

from memgym.agents import retrieval
from memgym.data.text import split_passages, truncate_middle
from memgym.tokenizers import WordTokenCounter


def test_split_passages_is_lossless_and_bounded():
    counter = WordTokenCounter()
    text = " ".join(f"w{i}" for i in range(23)) + "  \n"
    passages = split_passages(text, 5, counter)
    assert "".join(passages) == text
    assert [counter.count(p) for p in passages] == [5, 5, 5, 5, 3]
    assert split_passages("", 5, counter) == []


def test_truncate_middle_keeps_both_ends():
    counter = WordTokenCounter()
    text = " ".join(f"w{i}" for i in range(100))
    assert truncate_middle(text, 100, counter) == (text, False)
    cut, truncated = truncate_middle(text, 10, counter)
    assert truncated
    assert cut.startswith("w0 w1 w2 w3 w4") and cut.endswith("w95 w96 w97 w98 w99")
    assert counter.count(cut) <= 10
    assert truncate_middle(text, 0, counter) == ("", True)


def test_agents_use_the_same_text_tools():
    assert retrieval.split_passages is split_passages
    assert retrieval.truncate_middle is truncate_middle
