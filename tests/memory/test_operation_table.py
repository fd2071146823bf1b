"""The operation table: a registered operation parses (JSON and RMM lines), is validated by its
row's id/text rules, applies through its handler, is counted and traced; registration errors
name the fault."""

import pytest

from memgym.errors import ConfigError
from memgym.memory import (
    OPERATION_EVENTS,
    MemoryBank,
    MemoryOperation,
    OperationResult,
    count_operations,
    operation_events,
    parse_memory_operations,
    parse_rmm_operations,
    register_operation,
    unregister_operation,
)


def append(bank, op, context):
    """APPEND: add the op's text to the end of a live entry's text."""
    entry = bank.get(op.id)
    return OperationResult(op, True, "", bank.rewrite(op.id, f"{entry.text}; {op.text}",
                                                      context).id)


@pytest.fixture
def with_append():
    register_operation("APPEND", append, text="required", aliases=("EXTEND",))
    yield
    unregister_operation("APPEND")


def test_builtins_are_rows_of_the_table():
    assert operation_events()[:5] == OPERATION_EVENTS


def test_a_registered_operation_parses_in_json_and_rmm_lines(with_append):
    ops, refused = parse_memory_operations('{"memory": [{"event": "extend", "id": 2, '
                                           '"text": "also jazz"}]}')
    assert ops == [MemoryOperation("APPEND", "2", "also jazz")] and refused == []
    ops, refused = parse_rmm_operations("Append(1, likes jazz too)\nAdd()", summary="s",
                                        candidate_ids=["7", "9"])
    assert ops == [MemoryOperation("APPEND", "9", "likes jazz too"),
                   MemoryOperation("ADD", None, "s")] and refused == []


def test_unregistered_names_stay_unknown_to_the_parsers():
    ops, refused = parse_memory_operations('{"event": "APPEND", "id": "1", "text": "x"}')
    assert ops == [] and "unknown event 'APPEND'" in refused[0].reason
    ops, refused = parse_rmm_operations("Append(0, x)", summary="s", candidate_ids=["1"])
    assert ops == [] and refused[0].reason.startswith("malformed RMM action")


def test_a_registered_operation_applies_through_its_handler_and_is_counted(with_append):
    bank = MemoryBank()
    bank.apply([{"event": "ADD", "text": "Ana likes rock"}], timestamp="May")
    results = bank.apply([{"event": "APPEND", "id": "0", "text": "and jazz"}], timestamp="June")
    assert results[0].applied and bank.get("0").text == "Ana likes rock; and jazz"
    assert bank.get("0").history == ("Ana likes rock",) and bank.get("0").updated_at == "June"
    assert bank.counts["APPEND/applied"] == 1 and count_operations([])["APPEND/refused"] == 0
    assert bank.describe_changes(results) == "APPEND [0] Ana likes rock; and jazz"


def test_the_rows_rules_refuse_before_the_handler_runs(with_append):
    bank = MemoryBank()
    unknown, no_text = bank.apply([{"event": "APPEND", "id": "5", "text": "x"},
                                   {"event": "APPEND", "id": "5", "text": " "}])
    assert not unknown.applied and "unknown id '5'" in unknown.reason
    assert not no_text.applied and no_text.reason == "APPEND needs a non-empty text"


def test_a_handler_that_returns_no_result_is_a_config_error():
    register_operation("BROKEN", lambda bank, op, context: None, id="ignored")
    try:
        with pytest.raises(ConfigError, match="BROKEN.*OperationResult"):
            MemoryBank().apply([{"event": "BROKEN"}])
    finally:
        unregister_operation("BROKEN")


@pytest.mark.parametrize("kwargs, fragment", [
    ({"name": "pin"}, "upper case"),
    ({"name": "ADD"}, "already the operation 'ADD'"),
    ({"name": "PIN", "aliases": ("NONE",)}, "already the operation 'NOOP'"),
    ({"name": "PIN", "id": "maybe"}, "id='maybe'"),
    ({"name": "PIN", "formats": ("xml",)}, "formats"),
    ({"name": "PIN", "handler": "not callable"}, "callable"),
])
def test_bad_registrations_name_the_fault(kwargs, fragment):
    kwargs = {"handler": append, **kwargs}
    with pytest.raises(ConfigError, match=fragment):
        register_operation(kwargs.pop("name"), kwargs.pop("handler"), **kwargs)
    assert "PIN" not in operation_events()


def test_builtins_cannot_be_unregistered():
    with pytest.raises(ConfigError, match="built in"):
        unregister_operation("DELETE")
