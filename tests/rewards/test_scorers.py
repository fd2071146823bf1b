"""Scorers agree with the official SQuAD/HotpotQA, MemAgent and RULER semantics on hand-made cases."""

import pytest

from memgym.errors import UnknownNameError
from memgym.rewards import (
    bleu1,
    boxed_em_normalized,
    exact_match,
    extract_boxed,
    f1,
    get_scorer,
    gold_in_pred_em,
    normalize_answer,
    reads_raw_text,
    strict_boxed_em,
    string_match_all,
    string_match_part,
    sub_em,
)


def test_normalize_drops_case_punctuation_articles_and_extra_space():
    assert normalize_answer("  The  Cat, sat!  an apple ") == "cat sat apple"


def test_exact_match_after_normalisation_and_best_over_golds():
    assert exact_match("The Beatles!", "beatles") == 1.0
    assert exact_match("Beatles", ["Rolling Stones", "the beatles"]) == 1.0
    assert exact_match("Beatle", "Beatles") == 0.0


def test_f1_partial_overlap_by_hand():
    # pred tokens {cat, sat}; gold {cat, sat, on, mat}: P = 1, R = 1/2 -> F1 = 2/3
    assert f1("the cat sat", "cat sat on a mat") == pytest.approx(2 / 3)
    assert f1("dog", "cat") == 0.0


def test_f1_yes_no_must_match_exactly_as_in_hotpotqa():
    assert f1("yes", "no") == 0.0
    assert f1("yes it is", "yes") == 0.0  # the official script gives 0, not a partial F1
    assert f1("Yes.", "yes") == 1.0


def test_sub_em_is_two_way_against_the_first_gold_as_memagent():
    assert sub_em("I think it was Paris, France", "paris") == 1.0
    assert sub_em("Paris", "Paris, France") == 1.0  # the prediction inside the gold counts too
    assert sub_em("Lyon", ["Paris", "lyon"]) == 0.0  # only answers[0] is scored
    assert sub_em("", "Paris") == 0.0  # no answer, no credit
    assert sub_em("the", "Beatles") == 1.0  # normalises to "", which MemAgent's `in` accepts


def test_gold_in_pred_em_is_one_way_best_over_golds():
    assert gold_in_pred_em("I think it was Paris, France", "paris") == 1.0
    assert gold_in_pred_em("Lyon", ["Paris", "lyon"]) == 1.0
    assert gold_in_pred_em("Paris", "Paris, France") == 0.0
    assert gold_in_pred_em("anything", "") == 0.0  # an empty gold never matches


def test_extract_boxed_last_box_nested_unclosed_and_space_form():
    assert extract_boxed("a \\boxed{1} then \\boxed{2}") == "2"
    assert extract_boxed("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert extract_boxed("\\boxed{ok} and \\boxed{broken") is None  # no fallback, as MemAgent
    assert extract_boxed("so \\boxed 5$ done") == "5"
    assert extract_boxed("\\fbox{5}") is None
    assert extract_boxed("no box here") is None


def test_strict_boxed_em_is_memagents_exact_match_without_normalisation():
    assert strict_boxed_em("The answer is \\boxed{Beatles}", "beatles") == 1.0
    assert strict_boxed_em("The answer is \\boxed{The Beatles}", "beatles") == 0.0
    assert strict_boxed_em("\\boxed{NewYork}", "New York") == 1.0  # spaces dropped
    assert strict_boxed_em("The answer is The Beatles", "beatles") == 0.0
    assert strict_boxed_em("\\boxed{beatles}" + "x" * 300, "beatles") == 0.0  # last 300 chars


def test_boxed_em_normalized_reads_the_last_closed_box_with_squad_em():
    assert boxed_em_normalized("The answer is \\boxed{The Beatles}", "beatles") == 1.0
    assert boxed_em_normalized("\\boxed{ok} and \\boxed{broken", "ok") == 1.0
    assert boxed_em_normalized("\\boxed{beatles and more}", "beatles") == 0.0


def test_ruler_string_match_all_and_part():
    assert string_match_all("values: 12, 7", ["12", "7", "99"]) == pytest.approx(2 / 3)
    assert string_match_all("ABC", ["abc"]) == 1.0
    assert string_match_part("values: 12", ["99", "12"]) == 1.0
    assert string_match_part("none", ["99", "12"]) == 0.0


def test_bleu1_brevity_penalty():
    assert bleu1("cat sat on mat", "cat sat on mat") == pytest.approx(1.0)
    # 1 of 1 unigrams match, but 1 word against 4: penalty exp(1 - 4/1)
    assert bleu1("cat", "cat sat on mat") == pytest.approx(2.718281828 ** -3, rel=1e-6)


def test_get_scorer_suggests_the_nearest_name():
    assert get_scorer("f1") is f1
    with pytest.raises(UnknownNameError, match="sub_em"):
        get_scorer("sub_emm")


def test_only_the_boxed_verifiers_read_the_raw_completion():
    assert reads_raw_text(strict_boxed_em) and reads_raw_text(boxed_em_normalized)
    assert not reads_raw_text(sub_em) and not reads_raw_text(lambda p, g: 1.0)
