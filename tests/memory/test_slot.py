"""The overwrite slot: budget enforcement under each overflow policy."""

import pytest

from memgym.errors import ConfigError
from memgym.memory import NO_MEMORY, OverwriteSlot


def test_starts_with_memagents_initial_memory():
    assert OverwriteSlot().text == NO_MEMORY == "No previous memory"


def test_truncate_keeps_first_budget_tokens():
    slot = OverwriteSlot(budget_tokens=3, overflow="truncate")
    write = slot.write("one two three four five")
    assert slot.text == "one two three" and slot.tokens == 3
    assert write.overflowed and write.offered_tokens == 5
    assert slot.budget_use == 0.0


def test_penalize_keeps_text_but_records_overflow():
    slot = OverwriteSlot(budget_tokens=3, overflow="penalize")
    slot.write("a b")
    slot.write("one two three four")
    assert slot.text == "one two three four"
    assert slot.budget_use == 0.5


def test_reject_keeps_previous_memory():
    slot = OverwriteSlot(budget_tokens=2, overflow="reject")
    slot.write("keep me")
    slot.write("this is far too long")
    assert slot.text == "keep me"


def test_reset_restores_initial_text():
    slot = OverwriteSlot(budget_tokens=5)
    slot.write("x")
    slot.reset()
    assert slot.text == NO_MEMORY and slot.writes == []


@pytest.mark.parametrize("kwargs", [{"budget_tokens": 0}, {"overflow": "explode"}])
def test_bad_arguments_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        OverwriteSlot(**kwargs)


@pytest.mark.parametrize("mode,kept", [("truncate", "x" * 8), ("penalize", "x" * 8),
                                       ("reject", "start")])
def test_a_write_over_the_character_bound_overflows_in_every_mode(mode, kept):
    slot = OverwriteSlot(4, mode, initial="start", max_chars=8)
    write = slot.write("x" * 100)  # one "word": within the token budget, over the characters
    assert write.overflowed and slot.text == kept and slot.budget_use == 0.0


def test_an_initial_memory_over_the_character_bound_is_a_config_error():
    with pytest.raises(ConfigError, match="initial_memory"):
        OverwriteSlot(4, max_chars=8, initial="a long initial memory")
