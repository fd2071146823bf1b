"""The overwrite memory slot: MemAgent's and MEM1's memory, rewritten whole at every step."""

from __future__ import annotations

from dataclasses import dataclass

from memgym.errors import ConfigError
from memgym.tokenizers import TokenCounter, WordTokenCounter

__all__ = ["OverwriteSlot", "SlotWrite", "NO_MEMORY"]

NO_MEMORY = "No previous memory"
"""MemAgent's initial memory text."""


@dataclass(frozen=True)
class SlotWrite:
    """What happened to one write: the tokens offered, the tokens kept, and whether it overflowed."""

    offered_tokens: int
    kept_tokens: int
    overflowed: bool


class OverwriteSlot:
    """A single text memory with a token budget, overwritten by each write.

    Args:
        budget_tokens: the most tokens the memory may hold (MemAgent: 1024).
        overflow: "truncate" keeps the first `budget_tokens` tokens of an oversized write;
            "penalize" keeps the write whole and only records the overflow (the rubric's
            memory_budget component then scores it 0); "reject" keeps the previous memory.
        initial: the memory before any write.
        counter: how tokens are counted.
        max_chars: a hard character bound on the kept memory, whatever the mode (None: none).
            A longer write counts as overflowing and is cut there ("truncate", "penalize") or
            refused ("reject"); the env sets it from the budget so its observation is bounded.
    """

    OVERFLOW_MODES = ("truncate", "penalize", "reject")

    def __init__(self, budget_tokens: int = 1024, overflow: str = "truncate",
                 initial: str = NO_MEMORY, counter: TokenCounter | None = None,
                 max_chars: int | None = None):
        if budget_tokens <= 0:
            raise ConfigError(f"memory_tokens must be positive, got {budget_tokens}")
        if overflow not in self.OVERFLOW_MODES:
            raise ConfigError(f"memory_overflow={overflow!r}; choose one of {self.OVERFLOW_MODES}")
        if max_chars is not None and len(initial) > max_chars:
            raise ConfigError(f"initial_memory has {len(initial)} characters; the memory holds at "
                              f"most {max_chars} (raise memory_tokens or shorten it)")
        self.budget_tokens = budget_tokens
        self.max_chars = max_chars
        self.overflow = overflow
        self.initial = initial
        self.counter = counter or WordTokenCounter()
        self.text = initial
        self.tokens = self.counter.count(initial)
        self.writes: list[SlotWrite] = []

    def reset(self) -> None:
        """Restore the initial memory and forget past writes."""
        self.text = self.initial
        self.tokens = self.counter.count(self.initial)
        self.writes = []

    def write(self, text: str) -> SlotWrite:
        """Overwrite the memory with `text`, applying the overflow policy."""
        offered = self.counter.count(text)
        too_long = self.max_chars is not None and len(text) > self.max_chars
        over = offered > self.budget_tokens or too_long
        if not over:
            self.text, self.tokens = text, offered
        elif self.overflow == "penalize":
            self.text = text[: self.max_chars] if too_long else text
            self.tokens = self.counter.count(self.text) if too_long else offered
        elif self.overflow == "truncate":
            self.text = self.counter.split(text, self.budget_tokens)[0][: self.max_chars]
            self.tokens = self.counter.count(self.text)
        # "reject": keep the previous memory unchanged
        record = SlotWrite(offered, self.tokens, over)
        self.writes.append(record)
        return record

    @property
    def budget_use(self) -> float:
        """Fraction of writes that fit the budget (1.0 before any write)."""
        if not self.writes:
            return 1.0
        return sum(not w.overflowed for w in self.writes) / len(self.writes)
