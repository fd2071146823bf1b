"""The memory bank: each operation's effect and validation (refused ones change nothing, the
others apply), bank-assigned ids, history, bounded size, counts, clear, pickling, retrieval by
speaker."""

import json
import pickle

import pytest

from memgym.errors import ConfigError, UnknownNameError
from memgym.memory import MemoryBank, MemoryOperation, count_operations


def _add(bank, *texts, **context):
    return bank.apply([MemoryOperation("ADD", None, t) for t in texts], **context)


def test_add_assigns_bank_ids_and_ignores_the_proposed_id():
    bank = MemoryBank()
    results = bank.apply([MemoryOperation("ADD", "42", "Alice lives in Paris"),
                          {"event": "ADD", "id": "x", "text": "Bob likes tea"}])
    assert [r.entry_id for r in results] == ["0", "1"] and all(r.applied for r in results)
    assert [e.id for e in bank] == ["0", "1"]


def test_add_records_speaker_session_timestamps_and_sources():
    bank = MemoryBank()
    _add(bank, "Alice lives in Paris", speaker="Alice", session=2,
         timestamp="1:56 pm on 8 May, 2023", source_ids=("D2:1", "D2:1", "D2:4"))
    entry = bank.get("0")
    assert (entry.speaker, entry.session) == ("Alice", 2)
    assert entry.created_at == entry.updated_at == "1:56 pm on 8 May, 2023"
    assert entry.source_ids == ("D2:1", "D2:4") and entry.history == ()


def test_ids_are_never_reused_after_delete():
    bank = MemoryBank()
    _add(bank, "a fact", "another fact")
    bank.apply([MemoryOperation("DELETE", "1")])
    assert _add(bank, "a third fact")[0].entry_id == "2"
    refused = bank.apply([MemoryOperation("UPDATE", "1", "x")])[0]
    assert not refused.applied and "unknown id '1' (it was deleted)" in refused.reason


def test_update_keeps_the_id_and_records_the_old_text():
    bank = MemoryBank()
    _add(bank, "Alice lives in Paris", speaker="Alice", timestamp="May", source_ids=("D1:1",))
    result = bank.apply([MemoryOperation("UPDATE", "0", "Alice lives in Rome")],
                        timestamp="June", source_ids=("D3:2",))[0]
    entry = bank.get("0")
    assert result.applied and result.entry_id == "0" and len(bank) == 1
    assert entry.text == "Alice lives in Rome" and entry.history == ("Alice lives in Paris",)
    assert (entry.created_at, entry.updated_at) == ("May", "June")
    assert entry.source_ids == ("D1:1", "D3:2") and entry.speaker == "Alice"


def test_merge_replaces_the_targets_text_with_the_merged_summary():
    bank = MemoryBank()
    _add(bank, "SPEAKER_1 works out although he doesn't enjoy it.")
    merged = "SPEAKER_1 exercises every Monday and Thursday, although he doesn't enjoy it."
    assert bank.apply([MemoryOperation("MERGE", "0", merged)])[0].applied
    assert bank.get("0").text == merged
    assert bank.get("0").history == ("SPEAKER_1 works out although he doesn't enjoy it.",)


def test_delete_removes_the_entry_and_noop_changes_nothing():
    bank = MemoryBank()
    _add(bank, "a", "b")
    before = bank.version
    assert bank.apply([MemoryOperation("NOOP", "0"), MemoryOperation("NOOP")])[0].applied
    assert bank.version == before
    assert bank.apply([MemoryOperation("DELETE", "0")])[0].applied
    assert bank.texts() == ["b"] and "0" not in bank and "1" in bank


@pytest.mark.parametrize("op, fragment", [
    (MemoryOperation("UPDATE", "7", "x"), "unknown id '7'"),
    (MemoryOperation("DELETE", "7"), "unknown id '7'"),
    (MemoryOperation("MERGE", "7", "x"), "unknown id '7'"),
    (MemoryOperation("NOOP", "7"), "unknown id '7'"),
    (MemoryOperation("UPDATE", None, "x"), "needs the id"),
    (MemoryOperation("ADD", None, None), "needs a non-empty text"),
    (MemoryOperation("ADD", None, "   "), "needs a non-empty text"),
    (MemoryOperation("UPDATE", "0", ""), "needs a non-empty text"),
    (MemoryOperation("MERGE", "0", None), "needs a non-empty text"),
    (MemoryOperation("ADD", None, "alice  LIVES in paris"), "duplicate ADD: memory '0'"),
    ({"event": "ADD", "text": 5}, "'text' must be a string"),
    ({"event": "FORGET", "id": "0"}, "unknown event 'FORGET'"),
    ({"text": "x"}, "missing 'event'"),
    ("ADD Alice", "expected an object"),
])
def test_each_invalid_operation_is_refused_with_its_reason(op, fragment):
    bank = MemoryBank()
    _add(bank, "Alice lives in Paris")
    before = bank.entries
    result = bank.apply([op])[0]
    assert not result.applied and fragment in result.reason
    assert bank.entries == before


def test_refused_operations_do_not_block_the_others():
    bank = MemoryBank()
    _add(bank, "Alice lives in Paris")
    results = bank.apply([MemoryOperation("DELETE", "9"), MemoryOperation("ADD", None, "Bob x"),
                          MemoryOperation("ADD", None, "Alice lives in Paris"),
                          MemoryOperation("UPDATE", "0", "Alice lives in Rome")])
    assert [r.applied for r in results] == [False, True, False, True]
    assert bank.texts() == ["Alice lives in Rome", "Bob x"]


def test_duplicates_are_per_speaker():
    bank = MemoryBank()
    assert _add(bank, "Likes pizza", speaker="Alice")[0].applied
    assert _add(bank, "Likes pizza", speaker="Bob")[0].applied
    assert not _add(bank, "likes pizza", speaker="Alice")[0].applied


def test_update_to_a_new_text_frees_the_old_text_for_add():
    bank = MemoryBank()
    _add(bank, "Alice lives in Paris")
    bank.apply([MemoryOperation("UPDATE", "0", "Alice lives in Rome")])
    assert _add(bank, "Alice lives in Paris")[0].applied
    assert not _add(bank, "Alice lives in Rome")[0].applied


def test_update_that_copies_another_entry_keeps_both_indexed():
    bank = MemoryBank()
    _add(bank, "fact one", "fact two")
    bank.apply([MemoryOperation("UPDATE", "1", "fact one"), MemoryOperation("DELETE", "0")])
    assert not _add(bank, "fact one")[0].applied  # entry 1 still holds it


def test_bank_full_refuses_add_but_allows_update_and_delete():
    bank = MemoryBank(max_entries=2)
    results = _add(bank, "a", "b", "c")
    assert [r.applied for r in results] == [True, True, False]
    assert "bank full (max_entries=2)" in results[2].reason
    assert bank.apply([MemoryOperation("UPDATE", "0", "a2")])[0].applied
    bank.apply([MemoryOperation("DELETE", "1")])
    assert _add(bank, "c")[0].applied and len(bank) == 2


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_max_entries_must_be_a_positive_int(bad):
    with pytest.raises(ConfigError, match="max_entries"):
        MemoryBank(max_entries=bad)


def test_a_retriever_without_rank_is_a_config_error():
    with pytest.raises(ConfigError, match="rank"):
        MemoryBank(retriever=object())


def test_apply_never_raises_on_non_operations():
    bank = MemoryBank()
    for stray in (None, 3, "text", {"event": "ADD"}, [None, 1.5, b"x"]):
        for result in bank.apply(stray):
            assert not result.applied and result.reason
    assert len(bank) == 0


def test_counts_per_event_applied_and_refused():
    bank = MemoryBank()
    bank.apply_text(json.dumps({"memory": [
        {"id": "0", "text": "a", "event": "ADD"}, {"id": "1", "text": "a", "event": "ADD"},
        {"id": "0", "text": "b", "event": "UPDATE"}, {"id": "5", "event": "DELETE"},
        {"id": "0", "text": "b", "event": "NONE"}, {"event": "bogus"}]}))
    assert bank.counts["ADD/applied"] == 1 and bank.counts["ADD/refused"] == 1
    assert bank.counts["UPDATE/applied"] == 1 and bank.counts["DELETE/refused"] == 1
    assert bank.counts["NOOP/applied"] == 1 and bank.counts["MALFORMED/refused"] == 1
    assert sum(bank.counts.values()) == 6


def test_count_operations_has_every_key():
    counts = count_operations([])
    assert set(counts) == {f"{e}/{k}" for e in ("ADD", "UPDATE", "DELETE", "NOOP", "MERGE")
                           for k in ("applied", "refused")} | {"MALFORMED/refused"}
    assert not any(counts.values())


def test_clear_resets_entries_ids_and_counts():
    bank = MemoryBank()
    _add(bank, "a", "b")
    bank.clear()
    assert len(bank) == 0 and sum(bank.counts.values()) == 0
    assert _add(bank, "a")[0].entry_id == "0"


def test_entries_are_copies():
    bank = MemoryBank()
    _add(bank, "Alice lives in Paris")
    bank.entries[0].text = "edited"
    bank.get("0").text = "edited"
    bank.retrieve("Alice", 1)[0].text = "edited"
    assert bank.texts() == ["Alice lives in Paris"]


def test_bank_pickles_with_its_state():
    bank = MemoryBank(max_entries=3)
    _add(bank, "Alice lives in Paris", "Bob likes green tea", speaker="Alice")
    bank.apply([MemoryOperation("DELETE", "0")])
    copy = pickle.loads(pickle.dumps(bank))
    assert copy.entries == bank.entries and copy.counts == bank.counts
    assert _add(copy, "c")[0].entry_id == "2"
    assert copy.retrieve("green tea", 1)[0].id == "1"


def test_retrieve_filters_by_speaker_and_per_speaker_concatenates():
    bank = MemoryBank()
    _add(bank, "Alice adopted a cat", "Alice paints on weekends", speaker="Alice")
    _add(bank, "Bob adopted a dog", "Bob runs marathons", speaker="Bob")
    assert [e.speaker for e in bank.retrieve("adopted", 4, speaker="Bob")] == ["Bob", "Bob"]
    per = bank.retrieve_per_speaker("who adopted a pet", 1, ["Bob", "Alice"])
    assert [e.speaker for e in bank.retrieve_per_speaker("adopted", 5, "Bob")] == ["Bob"] * 2
    assert [e.text for e in per] == ["Bob adopted a dog", "Alice adopted a cat"]
    assert bank.retrieve("x", 0) == [] and MemoryBank().retrieve("x", 5) == []


def test_apply_text_keeps_item_order_and_rejects_unknown_formats():
    bank = MemoryBank()
    results = bank.apply_text('[{"event": "ADD", "text": "a"}, 7, {"event": "ADD", "text": "b"}]')
    assert [(r.applied, r.entry_id) for r in results] == [(True, "0"), (False, None),
                                                         (True, "1")]
    with pytest.raises(UnknownNameError, match="memory_r1"):
        bank.apply_text("Add()", format="rmm2")
    with pytest.raises(ConfigError, match="speakr"):
        bank.apply_text("[]", speakr="Alice")


def test_apply_text_rmm_adds_the_summary_or_merges_into_a_candidate():
    bank = MemoryBank()
    _add(bank, "SPEAKER_1 works out.", "SPEAKER_1 has a dog.")
    results = bank.apply_text("Merge(0, SPEAKER_1 works out on Mondays.)", "rmm",
                              summary="SPEAKER_1 exercises on Mondays.", candidate_ids=["1", "0"],
                              session=2)
    assert results[0].applied and results[0].entry_id == "1"
    assert bank.get("1").text == "SPEAKER_1 works out on Mondays."
    added = bank.apply_text("Add()", "rmm", summary="SPEAKER_1 likes jazz.", session=2)[0]
    assert added.applied and bank.get(added.entry_id).session == 2
