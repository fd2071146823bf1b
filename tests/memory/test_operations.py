"""Parsing memory operations: Memory-R1/mem0 JSON (as mem0's update prompt writes it, with the
usual model noise) and RMM's Add()/Merge(index, summary) (0-based, as RMM's prompt); malformed
items are refused with their reason; neither parser nor `apply_text` raises on any string
(hypothesis fuzzing, 1 MB strings, odd Unicode, deep nesting)."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memgym.memory import MemoryBank, MemoryOperation, parse_memory_operations, parse_rmm_operations

MEM0_EXAMPLE = """{
    "memory" : [
        {"id" : "0", "text" : "Loves cheese and chicken pizza", "event" : "UPDATE",
         "old_memory" : "I really like cheese pizza"},
        {"id" : "1", "text" : "User is a software engineer", "event" : "NONE"},
        {"id" : "2", "text" : "Name is John", "event" : "ADD"},
        {"id" : "3", "text" : "Dislikes cheese pizza", "event" : "DELETE"}
    ]
}"""


def test_mem0_update_prompt_output_parses():
    ops, refused = parse_memory_operations(MEM0_EXAMPLE)
    assert refused == []
    assert ops == [MemoryOperation("UPDATE", "0", "Loves cheese and chicken pizza"),
                   MemoryOperation("NOOP", "1", "User is a software engineer"),
                   MemoryOperation("ADD", None, "Name is John"),
                   MemoryOperation("DELETE", "3", "Dislikes cheese pizza")]


def test_code_fences_prose_and_trailing_commas_are_tolerated():
    text = ("Here is the updated memory:\n```json\n"
            '{"memory": [{"id": "0", "text": "a", "event": "ADD",},],}\n```\nDone.')
    assert parse_memory_operations(text) == ([MemoryOperation("ADD", None, "a")], [])
    prose = 'I will add it. {"memory": [{"id": 4, "event": "delete"}]} That is all.'
    assert parse_memory_operations(prose)[0] == [MemoryOperation("DELETE", "4", None)]


def test_the_last_memory_object_or_fenced_block_is_the_answer():
    echo = ('Old: {"memory": [{"id": "0", "text": "a", "event": "NONE"}]} New: '
            '{"memory": [{"id": "0", "text": "b", "event": "UPDATE"}]}')
    assert parse_memory_operations(echo)[0] == [MemoryOperation("UPDATE", "0", "b")]
    fences = ('```json\n{"memory": [{"event": "ADD", "text": "draft"}]}\n```\nBetter:\n'
              '```json\n{"memory": [{"event": "ADD", "text": "final"}]}\n```')
    assert parse_memory_operations(fences)[0] == [MemoryOperation("ADD", None, "final")]


def test_a_bare_list_and_a_single_item_parse():
    assert parse_memory_operations('[{"event": "NOOP"}, {"event": "none", "id": 2}]')[0] == [
        MemoryOperation("NOOP"), MemoryOperation("NOOP", "2")]
    assert parse_memory_operations('{"event": "MERGE", "id": "1", "text": "m"}')[0] == [
        MemoryOperation("MERGE", "1", "m")]


def test_the_memory_object_is_found_after_other_brackets_in_prose():
    text = 'Facts [1] and {2}: {"memory": [{"event": "ADD", "text": "x"}]}'
    assert parse_memory_operations(text)[0] == [MemoryOperation("ADD", None, "x")]


def test_each_malformed_item_is_refused_and_the_others_parse():
    text = json.dumps({"memory": [
        {"event": "ADD", "text": "ok"}, "just a string", {"id": "1"},
        {"event": "RENAME", "id": "1"}, {"event": "UPDATE", "id": [1], "text": "x"},
        {"event": "UPDATE", "id": True, "text": "x"}, {"event": "ADD", "text": {"a": 1}},
        {"event": 3}]})
    ops, refused = parse_memory_operations(text)
    assert ops == [MemoryOperation("ADD", None, "ok")]
    reasons = [r.reason for r in refused]
    assert reasons[0].startswith("memory[1]: expected an object")
    assert reasons[1] == "memory[2]: missing 'event' (one of ADD, UPDATE, DELETE, NONE, MERGE)"
    assert reasons[2].startswith("memory[3]: unknown event 'RENAME'")
    assert "memory[4]: id must be a string or an integer, got list" == reasons[3]
    assert "got bool" in reasons[4] and "'text' must be a string, got dict" in reasons[5]
    assert reasons[6].startswith("memory[7]: unknown event 3")
    assert all(r.operation is None and not r.applied for r in refused)


def test_wholly_malformed_json_gives_one_refused_result():
    for text in ("", "   ", "not json at all", '{"memory": [', '{"facts": ["a"]}',
                 '{"memory": "ADD a"}', "null", "42", "see [1] and [2, 3] for details"):
        ops, refused = parse_memory_operations(text)
        assert ops == [] and len(refused) == 1, text
        assert refused[0].reason.startswith("malformed JSON: "), refused[0].reason
    assert "'memory' must be a list" in parse_memory_operations('{"memory": 3}')[1][0].reason


def test_an_empty_memory_list_is_no_operation():
    assert parse_memory_operations('{"memory": []}') == ([], [])


def test_non_string_actions_are_refused_not_raised():
    for value in (None, 3, b'{"memory": []}', ["ADD"]):
        ops, refused = parse_memory_operations(value)
        assert ops == [] and "must be a string" in refused[0].reason


# ----------------------------------------------------------------------------- RMM

RMM_EXAMPLE = ("Merge(0, SPEAKER_1 exercises every Monday and Thursday, although he doesn't "
               "particularly enjoy it.)")


def test_rmm_papers_example_merges_into_candidate_zero():
    ops, refused = parse_rmm_operations(RMM_EXAMPLE, summary="SPEAKER_1 exercises every Monday "
                                        "and Thursday.", candidate_ids=["17"])
    assert refused == []
    assert ops == [MemoryOperation("MERGE", "17", "SPEAKER_1 exercises every Monday and "
                                   "Thursday, although he doesn't particularly enjoy it.")]


def test_rmm_add_adds_the_given_summary_and_lines_are_separate_actions():
    text = "```\nAdd()\n- Merge(1, \"B likes (green) tea\")\n2. merge( 0 , A, too )\n```"
    ops, refused = parse_rmm_operations(text, summary="new summary", candidate_ids=["5", "9"])
    assert refused == []
    assert ops == [MemoryOperation("ADD", None, "new summary"),
                   MemoryOperation("MERGE", "9", "B likes (green) tea"),
                   MemoryOperation("MERGE", "5", "A, too")]


def test_rmm_merge_summary_may_span_lines_and_prose_is_ignored():
    text = "OUTPUT ACTION:\nMerge(0, first line\nsecond line)\nThat merges the topic."
    ops, _ = parse_rmm_operations(text, candidate_ids=["3"])
    assert ops == [MemoryOperation("MERGE", "3", "first line\nsecond line")]
    assert parse_rmm_operations("OUTPUT ACTION: Add()", summary="s")[0] == [
        MemoryOperation("ADD", None, "s")]


def test_rmm_bad_actions_are_refused_with_reasons():
    text = "Merge(2, too far)\nMerge(-1, negative)\nMerge(x, y)\nMerge(0)\nAdd("
    ops, refused = parse_rmm_operations(text, summary="s", candidate_ids=["a", "b"])
    assert ops == []
    reasons = [r.reason for r in refused]
    assert "Merge index 2 is out of range: 2 retrieved memories, indices 0..1" in reasons[0]
    assert "0-based" in reasons[0] and "index -1 is out of range" in reasons[1]
    assert "expected Merge(index, merged_summary)" in reasons[2] and reasons[3]
    assert "Add( is not closed" in reasons[4]
    no_candidates = parse_rmm_operations("Merge(0, x)", summary="s")[1][0].reason
    assert "no retrieved memories to merge into; use Add()" in no_candidates


def test_rmm_add_without_a_summary_is_refused_unless_it_carries_text():
    assert "pass summary=" in parse_rmm_operations("Add()")[1][0].reason
    assert parse_rmm_operations("Add(B likes tea)")[0] == [MemoryOperation("ADD", None,
                                                                           "B likes tea")]


def test_rmm_output_without_actions_gives_one_refused_result():
    for text in ("", "I think we should add it.", "{}", "Addition()"):
        ops, refused = parse_rmm_operations(text, summary="s", candidate_ids=["0"])
        assert ops == [] and len(refused) == 1, text
        assert refused[0].reason.startswith("malformed RMM action"), refused[0].reason


def test_rmm_bad_arguments_are_refused_not_raised():
    assert "candidate_ids" in parse_rmm_operations("Add()", candidate_ids="01")[1][0].reason
    assert "summary must be" in parse_rmm_operations("Add()", summary=3)[1][0].reason
    assert "must be a string" in parse_rmm_operations(None)[1][0].reason


# ----------------------------------------------------------------------------- never raises

_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["memory", "event", "id", "text", "old_memory", "x"]),
                      children, max_size=5),
    max_leaves=20)
_EVENTS = st.sampled_from(["ADD", "UPDATE", "DELETE", "NONE", "NOOP", "MERGE", "add", "?"])
_ITEM = st.fixed_dictionaries({"event": _EVENTS}, optional={
    "id": st.one_of(st.none(), st.integers(-2, 5), st.text(max_size=3)),
    "text": st.one_of(st.none(), st.text(max_size=20))})


def _check_results(results):
    for r in results:
        assert isinstance(r.applied, bool) and isinstance(r.reason, str)
        assert r.applied == (r.reason == "")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_never_raises(text):
    bank = MemoryBank(max_entries=3)
    parse_memory_operations(text)
    parse_rmm_operations(text, summary="s", candidate_ids=["0"])
    _check_results(bank.apply_text(text))
    _check_results(bank.apply_text(text, "rmm", summary=text, candidate_ids=["0", "1"]))


@settings(max_examples=150, deadline=None)
@given(_JSONISH, st.sampled_from(["{}", "```json\n{}\n```", "prose {} prose", "{},"]))
def test_arbitrary_json_values_never_raise(value, wrapper):
    text = wrapper.replace("{}", json.dumps(value))
    _check_results(MemoryBank().apply_text(text))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(_ITEM, max_size=6), min_size=1, max_size=4))
def test_random_operation_sequences_keep_the_bank_consistent(batches):
    bank = MemoryBank(max_entries=4)
    for batch in batches:
        results = bank.apply_text(json.dumps({"memory": batch}), speaker="A")
        assert len(results) == len(batch)
        _check_results(results)
        assert len(bank) <= 4
        ids = [e.id for e in bank]
        assert ids == sorted(ids, key=int) and len(set(ids)) == len(ids)
        assert all(e.text.strip() for e in bank)


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet=st.characters(categories=["Cs", "Co", "Cn", "Mn", "Zs", "Cc", "So"]),
               min_size=1, max_size=50))
def test_odd_unicode_is_stored_and_retrieved_without_error(odd):
    bank = MemoryBank()
    results = bank.apply_text(json.dumps({"memory": [{"event": "ADD", "text": odd}]}))
    _check_results(results)
    bank.retrieve(odd, 3)
    for entry in bank:
        entry.text.encode("utf-8")  # stored texts are always valid UTF-8


HOSTILE_ACTIONS = ["x" * 1_000_000, "[" * 1_000_000, "{" * 500_000, '{"memory": ' * 200_000,
                   "[" * 100_000 + "]" * 100_000, "Merge(0, " + "(" * 1_000_000,
                   "Add()\n" * 100_000, "\u202e\u0000\udcff" * 300_000]
"""Megabyte strings and deep nesting (how long each takes: bench/bench_memory_bank.py)."""


def test_megabyte_strings_and_deep_nesting_are_refused_not_raised():
    for text in HOSTILE_ACTIONS:
        bank = MemoryBank()
        _check_results(bank.apply_text(text))
        _check_results(bank.apply_text(text, "rmm", summary="s", candidate_ids=["0"]))
    big = json.dumps({"memory": [{"event": "ADD", "text": "y" * 1_000_000}]})
    assert MemoryBank().apply_text(big)[0].applied


@pytest.mark.parametrize("text", ["NO_TRAIT", " no_trait\n", "`NO_TRAIT`"])
def test_rmm_no_trait_is_the_valid_empty_action(text):
    # the rmm agent sends NO_TRAIT for a session with nothing to store; it was refused as
    # malformed (op_validity 0 and a MALFORMED count for a correct decision)
    assert parse_rmm_operations(text, candidate_ids=["1"]) == ([], [])


@pytest.mark.parametrize("text", ["", "nothing to add", "NO_TRAITS please"])
def test_rmm_output_without_an_action_or_no_trait_is_malformed(text):
    ops, refused = parse_rmm_operations(text, summary="s", candidate_ids=["1"])
    assert ops == [] and len(refused) == 1 and "malformed RMM action" in refused[0].reason
