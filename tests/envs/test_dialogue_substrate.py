"""The dialogue env's substrate extension points: an injected bank factory and retriever."""

import json

import pytest
from dialogue_helpers import tiny_conversation

from memgym.envs.dialogue import DialogueMemoryEnv
from memgym.errors import ConfigError
from memgym.memory import BM25Retriever, MemoryBank


class CountingBank(MemoryBank):
    """A bank subclass that counts its resets, to see that the env uses the factory."""

    made = 0

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        CountingBank.made += 1


def test_the_env_builds_its_bank_with_the_factory_and_uses_the_given_retriever():
    retriever = BM25Retriever()
    env = DialogueMemoryEnv([tiny_conversation()], bank_factory=CountingBank,
                            retriever=retriever, max_entries=5)
    before = CountingBank.made
    env.reset(seed=0)
    assert isinstance(env.bank, CountingBank) and CountingBank.made == before + 1
    assert env.bank.retriever is retriever and env.bank.max_entries == 5
    _, _, _, _, info = env.step(json.dumps({"memory": [{"event": "ADD", "text": "Ana: Lisbon"}]}))
    assert info["memory_trace"] == "ADD [0] Ana: Lisbon"


def test_bad_injections_are_config_errors():
    with pytest.raises(ConfigError, match="retriever must have rank"):
        DialogueMemoryEnv([tiny_conversation()], retriever=object())
    with pytest.raises(ConfigError, match="bank_factory must be callable"):
        DialogueMemoryEnv([tiny_conversation()], bank_factory="MemoryBank")


def test_a_registered_operation_runs_through_both_protocols():
    from memgym.memory import OperationResult, register_operation, unregister_operation

    def append(bank, op, context):
        entry = bank.get(op.id)
        return OperationResult(op, True, "", bank.rewrite(op.id, f"{entry.text}; {op.text}",
                                                          context).id)

    register_operation("APPEND", append, text="required")
    try:
        for protocol, first, second in (
                ("memory_r1", json.dumps({"memory": [{"event": "ADD", "text": "Ana: Lisbon"}]}),
                 json.dumps({"memory": [{"event": "APPEND", "id": "0", "text": "violin"}]})),
                ("rmm", "Add(Ana: Lisbon)", "Append(0, violin)")):
            env = DialogueMemoryEnv([tiny_conversation()], protocol=protocol)
            env.reset(seed=0)
            env.step(first)
            _, _, _, _, info = env.step(second)
            assert info["memory_trace"] == "APPEND [0] Ana: Lisbon; violin", protocol
            assert info["op_errors"] == []
    finally:
        unregister_operation("APPEND")
