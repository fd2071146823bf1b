"""Token-bounded text tools shared by task sources and agents: lossless passage splitting and
middle truncation (below both, so a task source never imports an agent module)."""

from __future__ import annotations

from memgym.tokenizers import TokenCounter

__all__ = ["split_passages", "truncate_middle"]


def split_passages(text: str, passage_tokens: int, counter: TokenCounter) -> list[str]:
    """Cut `text` into consecutive passages of at most `passage_tokens` tokens (lossless)."""
    passages: list[str] = []
    while text:
        head, rest = counter.split(text, max(passage_tokens, 1))
        if not head or not head.strip():  # no tokens left: the remainder joins the last passage
            if passages:
                passages[-1] += text
            elif text.strip():
                passages.append(text)
            break
        passages.append(head)
        text = rest
    return passages


def truncate_middle(text: str, max_tokens: int, counter: TokenCounter) -> tuple[str, bool]:
    """Keep the first and last `max_tokens / 2` tokens of `text`, dropping the middle.

    The usual long-context baseline truncation (LongBench, MemAgent's direct-generation runs):
    the start and the end of a context are where instructions and the most recent facts sit.

    Returns:
        (text, whether it was truncated). Tokens are counted by `counter`; re-tokenising the
        joined halves may differ from `max_tokens` by a token at the joint.
    """
    total = counter.count(text)
    if total <= max_tokens:
        return text, False
    if max_tokens <= 0:
        return "", True
    keep_head = max_tokens // 2
    head, _ = counter.split(text, keep_head)
    _, tail = counter.split(text, total - (max_tokens - keep_head))
    return head + tail, True
