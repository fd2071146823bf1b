"""memgym's MemAgent scorers and extractors against re-implementations of MemAgent's own code.

The reference functions below transcribe BytedTsinghua-SIA/MemAgent (76b7a65):
`verl/utils/reward_score/hotpotqa.py` (training reward) and
`taskutils/memory_eval/utils/__init__.py` + `ruler_hqa.py` (test verifier and answer parsing).
They are compared on the cases the fidelity review found, then on generated random cases.
"""

import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memgym.rewards import extract_answer, strict_boxed_em, sub_em


# -- MemAgent's code, transcribed ----------------------------------------------------------------
def ref_last_boxed_only_string(s):
    idx = s.rfind("\\boxed")
    if "\\boxed " in s:
        return "\\boxed " + s.split("\\boxed ")[-1].split("$")[0]
    if idx < 0:
        idx = s.rfind("\\fbox")
        if idx < 0:
            return None
    i = idx
    right_brace_idx = None
    num_left_braces_open = 0
    while i < len(s):
        if s[i] == "{":
            num_left_braces_open += 1
        if s[i] == "}":
            num_left_braces_open -= 1
            if num_left_braces_open == 0:
                right_brace_idx = i
                break
        i += 1
    return None if right_brace_idx is None else s[idx:right_brace_idx + 1]


def ref_remove_boxed(s):
    if "\\boxed " in s:
        left = "\\boxed "
        assert s[:len(left)] == left
        return s[len(left):]
    left = "\\boxed{"
    assert s[:len(left)] == left
    assert s[-1] == "}"
    return s[len(left):-1]


def ref_strip_string(s):
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "").replace("\\%", "").replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if len(s) == 0:
        return s
    return s.replace(" ", "")


def ref_is_equiv(a, b):
    if a is None and b is None:
        return True
    if a is None or b is None:
        return False
    try:
        return ref_strip_string(a) == ref_strip_string(b)
    except Exception:
        return a == b


def ref_compute_score(solution_str, ground_truth):
    def single(sol, gt):
        gt = gt.lower()
        retval = 0.0
        try:
            boxed = ref_last_boxed_only_string(sol)
            if boxed is not None and ref_is_equiv(ref_remove_boxed(boxed), gt):
                retval = 1.0
        except Exception:
            pass
        return retval
    solution_str = solution_str[-300:].lower()
    return max(single(solution_str, gt) for gt in ground_truth)


def ref_normalize_answer(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def ref_sub_exact_match_score(prediction, ground_truth):
    ground_truth = ref_normalize_answer(ground_truth)
    prediction = ref_normalize_answer(prediction)
    return (ground_truth in prediction) or (prediction in ground_truth)


def ref_extract_answer(response):
    response = response.replace("*", "")
    if "the answer is" in response:
        return (response.rsplit("the answer is", 1)[-1].strip().replace("<｜Assistant｜>", "")
                .replace("<｜end▁of▁sentence｜>", "").strip().strip(".").strip())
    return None


def ref_extract_boxed_answer(s):
    b = ref_last_boxed_only_string(s)
    return None if b is None else ref_remove_boxed(b)


def ref_extract_solution(solution_str):
    if "</think>" not in solution_str:
        return solution_str, solution_str
    return solution_str.split("</think>")[-1].strip(), solution_str


def ref_eval_pred(output, parser):
    """ruler_hqa.py: the response, stripped, minus reasoning, through the api's parser."""
    response = output.strip()
    pred, _ = ref_extract_solution(response)
    try:
        return parser(pred) if pred else parser(response)
    except AssertionError:  # MemAgent's eval aborts here; memgym reads it as no answer
        return None


def ref_judge_sub_em(pred, answers):
    return float(ref_sub_exact_match_score(pred, answers[0])) if pred else 0


# -- the review's cases --------------------------------------------------------------------------
TRAINING_CASES = [
    ("\\boxed{Paris}", ["Paris, France"]),
    ("\\boxed{Beatles}", ["The Beatles"]),
    ("\\boxed{NewYork}", ["New York"]),
    ("\\boxed{U.S.}", ["US"]),
    ("\\boxed{1,000}", ["1000"]),
    ("\\boxed{Paris}" + " trailing words" * 27, ["Paris"]),   # box followed by 405 characters
    ("\\boxed{Paris} then \\boxed{Lyo", ["Paris"]),            # unclosed last box
    ("\\boxed{\\text{a{b}c}}", ["\\text{a{b}c}"]),              # nested braces
    ("\\fbox{Paris}", ["Paris"]),
    ("so \\boxed 5$ and more", ["5"]),
    ("\\boxed 5", ["5"]),
    ("\\BOXED{Paris}", ["paris"]),
    ("\\boxed{ Paris \\$ }", ["paris"]),
    ("no box at all: Paris", ["Paris"]),
    ("\\boxed{x}", ["y", "X"]),
]


@pytest.mark.parametrize("completion,golds", TRAINING_CASES)
def test_strict_boxed_em_equals_memagents_training_reward(completion, golds):
    assert strict_boxed_em(completion, golds) == ref_compute_score(completion, golds)


TEST_CASES = [
    ("Therefore, the answer is Paris.", ["Paris, France"]),
    ("Therefore, the answer is John.", ["John Smith"]),
    ("Therefore, the answer is the.", ["Beatles"]),
    ("The answer is Paris.", ["Paris"]),                      # capital T: no match in MemAgent
    ("Therefore, the answer is **Lyon**", ["Paris", "Lyon"]),  # answers[0] only
    ("<think>the answer is x</think> Therefore, the answer is Paris", ["Paris"]),
    ("<think>so the answer is Paris</think>", ["Paris"]),     # nothing after </think>
    ("Therefore, the answer is .", ["Paris"]),
    ("the answer is Paris<｜end▁of▁sentence｜>", ["Paris"]),
    ("no phrase here", ["here"]),
]


@pytest.mark.parametrize("completion,golds", TEST_CASES)
def test_answer_is_extraction_and_sub_em_equal_memagents_eval(completion, golds):
    ours = sub_em(extract_answer(completion, "answer_is") or "", golds)
    assert ours == ref_judge_sub_em(ref_eval_pred(completion, ref_extract_answer), golds)
    assert extract_answer(completion, "answer_is") == ref_eval_pred(completion, ref_extract_answer)


@pytest.mark.parametrize("completion,golds", TRAINING_CASES)
def test_boxed_extraction_and_sub_em_equal_memagents_boxed_eval(completion, golds):
    ref = ref_eval_pred(completion, ref_extract_boxed_answer)
    assert extract_answer(completion, "boxed") == ref
    assert sub_em(extract_answer(completion, "boxed") or "", golds) == ref_judge_sub_em(ref, golds)


# -- random cases --------------------------------------------------------------------------------
_PIECES = ["\\boxed{", "\\boxed ", "\\fbox{", "\\boxed", "{", "}", "$", " ", "\n", "the answer is ",
           "The ", "the ", "a ", "*", ".", ",", "Paris", "paris", "France", "New", "York", "1,000",
           "\\$", "\\%", "\\!", "\\\\", "</think>", "<think>", "x" * 120, "é", "U.S."]
_texts = st.lists(st.sampled_from(_PIECES) | st.text(max_size=4), max_size=14).map("".join)
_golds = st.lists(st.lists(st.sampled_from(_PIECES[10:26]) | st.text(max_size=3), max_size=4)
                  .map("".join), min_size=1, max_size=3)
_SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_texts, _golds)
def test_strict_boxed_em_matches_memagent_on_random_cases(completion, golds):
    assert strict_boxed_em(completion, golds) == ref_compute_score(completion, golds)


@_SETTINGS
@given(_texts, _golds)
def test_sub_em_matches_memagent_on_random_cases(prediction, golds):
    assert sub_em(prediction, golds) == ref_judge_sub_em(prediction, golds)


@_SETTINGS
@given(_texts)
def test_extractors_match_memagent_on_random_cases(completion):
    assert extract_answer(completion, "answer_is") == ref_eval_pred(completion, ref_extract_answer)
    assert extract_answer(completion, "boxed") == ref_eval_pred(completion,
                                                                ref_extract_boxed_answer)
