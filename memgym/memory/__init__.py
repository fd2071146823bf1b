"""Memory substrates owned by environments: the overwrite slot (and, later, the memory bank)."""

from memgym.memory.slot import NO_MEMORY, OverwriteSlot, SlotWrite

__all__ = ["NO_MEMORY", "OverwriteSlot", "SlotWrite"]
