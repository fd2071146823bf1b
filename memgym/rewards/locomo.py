"""LoCoMo's answer metrics, as its release scores them, and the mem0-style F1 and BLEU-1 that
Memory-R1 reports.

Matched against snap-research/locomo (branch `code`, task_eval/evaluation.py) and mem0's
evaluation (evaluation/metrics/utils.py, which Memory-R1 follows for F1 and BLEU-1):

  - `locomo_normalize`: LoCoMo's `normalize_answer`: commas dropped, lowercased, punctuation
    removed, the words a/an/the AND "and" removed, whitespace collapsed.
  - `locomo_f1`: LoCoMo's `f1_score`: token F1 over Porter-stemmed (nltk) normalised tokens.
  - `locomo_multi_f1`: LoCoMo's `f1` for category 1 (multi-hop): prediction and gold are split
    on commas; the mean over gold parts of the best F1 against any prediction part.
  - `locomo_em`: LoCoMo's `exact_match_score`: the SETS of normalised tokens are equal (order and
    repetition ignored, no stemming).
  - `mem0_f1`: mem0's `calculate_metrics` F1, a different scale from LoCoMo's: the SETS of
    `simple_tokenize` tokens (lowercased; ".", ",", "!", "?" turned into spaces; nothing else
    removed, no stemming). "The 7th of May 2023" vs "7 May 2023": 0.5 here, 0.571 in `locomo_f1`.
  - `mem0_bleu1`: mem0's `calculate_bleu_scores` BLEU-1: nltk `sentence_bleu` with weights
    (1, 0, 0, 0) and smoothing method1 over `word_tokenize` of the lowercased texts, i.e. punkt's
    sentence split, then nltk's Treebank word tokenizer on each sentence ("She moved to Paris.
    She likes it." -> she moved to paris . she likes it . : 1/9 against "Paris"). Punkt runs
    with nltk's default (untrained) parameters, because the trained English model is a separate
    download memgym cannot rely on and a score must not depend on what a machine has installed.
    On mem0's lowercased text the two differ only after a period that the English model knows
    as an abbreviation, an initial or an ordinal ("dr. smith", "in 2023. she"): the untrained
    splitter ends a sentence there, so "dr" and "." are two tokens where mem0 keeps "dr.".
  - `locomo_scores`: the per-category rules of LoCoMo's `eval_question_answering`: category
    "open-domain" (3) keeps the gold before the first ";"; "multi-hop" (1) uses the comma-split
    F1; "adversarial" (5) scores 1 when the prediction says "no information available" or "not
    mentioned" (all three metrics then take that value; LoCoMo reports only F1).

How these differ from `memgym.rewards.scorers` (SQuAD/HotpotQA semantics): `f1` there does not
stem, keeps "and", has HotpotQA's yes/no/noanswer rule and no comma split; `exact_match` there
compares normalised strings, not token sets; `bleu1` there tokenises after SQuAD normalisation
(punctuation and articles dropped), where mem0's keeps punctuation tokens and articles; with
any unigram overlap the formula is the same (clipped unigram precision times the brevity
penalty), and both give 0 without overlap.
"""

from __future__ import annotations

import functools
import re
import string
import warnings
from collections import Counter
from collections.abc import Sequence

__all__ = ["ADVERSARIAL_PHRASES", "answer_mem0_f1", "locomo_em", "locomo_f1", "locomo_multi_f1",
           "locomo_normalize", "locomo_scores", "mem0_bleu1", "mem0_f1", "mem0_tokenize",
           "mem0_word_tokenize"]

ADVERSARIAL_PHRASES = ("no information available", "not mentioned")
"""What LoCoMo accepts as the answer to an adversarial (category 5) question."""

_ARTICLES_AND = re.compile(r"\b(a|an|the|and)\b")
_PUNCT = set(string.punctuation)
_MEM0_PUNCT = str.maketrans({".": " ", ",": " ", "!": " ", "?": " "})


def locomo_normalize(text: str) -> str:
    """LoCoMo's `normalize_answer` (it also removes the word "and", unlike SQuAD's)."""
    text = text.replace(",", "").lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    return " ".join(_ARTICLES_AND.sub(" ", text).split())


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stem(word)


@functools.lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem import PorterStemmer

    return PorterStemmer()


def _stems(text: str) -> list[str]:
    return [_stem(w) for w in locomo_normalize(text).split()]


def locomo_f1(prediction: str, gold: str) -> float:
    """LoCoMo's `f1_score`: token F1 of Porter-stemmed normalised tokens."""
    pred, ref = _stems(prediction), _stems(gold)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def locomo_multi_f1(prediction: str, gold: str) -> float:
    """LoCoMo's multi-hop `f1`: mean over comma-separated gold parts of the best part F1."""
    preds = [p.strip() for p in prediction.split(",")]
    golds = [g.strip() for g in gold.split(",")]
    return sum(max(locomo_f1(p, g) for p in preds) for g in golds) / len(golds)


def locomo_em(prediction: str, gold: str) -> float:
    """LoCoMo's `exact_match_score`: equal sets of normalised tokens."""
    return float(set(locomo_normalize(prediction).split()) == set(locomo_normalize(gold).split()))


def mem0_tokenize(text: str) -> list[str]:
    """mem0's `simple_tokenize`: lowercase, ".", ",", "!", "?" to spaces, split on whitespace."""
    return str(text).lower().translate(_MEM0_PUNCT).split()


def mem0_f1(prediction: str, gold: str) -> float:
    """mem0's `calculate_metrics` F1: over the sets of `mem0_tokenize` tokens, no stemming."""
    if not str(prediction).strip() or not str(gold).strip():
        return 0.0  # mem0 returns 0 for an empty prediction or reference
    pred, ref = set(mem0_tokenize(prediction)), set(mem0_tokenize(gold))
    common = len(pred & ref)
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@functools.lru_cache(maxsize=1)
def _sentence_splitter():
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return PunktSentenceTokenizer()  # default parameters: no data download (module docstring)


@functools.lru_cache(maxsize=1)
def _treebank():
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return NLTKWordTokenizer()  # the tokenizer nltk.word_tokenize applies to each sentence


def mem0_word_tokenize(text: str) -> list[str]:
    """`nltk.word_tokenize` as mem0 calls it: punkt sentences, then Treebank words in each."""
    return [w for sentence in _sentence_splitter().tokenize(text)
            for w in _treebank().tokenize(sentence)]


def mem0_bleu1(prediction: str, gold: str) -> float:
    """mem0's BLEU-1 (Memory-R1 reports it): nltk, smoothing method1, punkt-split tokens."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hypothesis = mem0_word_tokenize(prediction.lower())
    reference = mem0_word_tokenize(gold.lower())
    if not hypothesis or not reference:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns about zero higher-order n-gram counts
        try:
            return float(sentence_bleu([reference], hypothesis, weights=(1, 0, 0, 0),
                                       smoothing_function=SmoothingFunction().method1))
        except ZeroDivisionError:  # mem0 treats it as 0 too
            return 0.0


def locomo_scores(prediction: str, golds: str | Sequence[str], category: str = ""
                  ) -> dict[str, float]:
    """F1, EM and BLEU-1 of `prediction` by LoCoMo's per-category rules, best over golds.

    Args:
        prediction: the answer text.
        golds: the gold answer(s).
        category: the question's category name (LoCoMo's: "multi-hop", "temporal",
            "open-domain", "single-hop", "adversarial"); other names use the plain rules.

    Returns:
        {"f1", "em", "bleu1"}, each in [0, 1].
    """
    if category == "adversarial":
        said = float(any(p in prediction.lower() for p in ADVERSARIAL_PHRASES))
        return {"f1": said, "em": said, "bleu1": said}
    golds = [golds] if isinstance(golds, str) else list(golds)
    if category == "open-domain":
        golds = [g.split(";")[0].strip() for g in golds]
    f1_fn = locomo_multi_f1 if category == "multi-hop" else locomo_f1
    if not golds:
        return {"f1": 0.0, "em": 0.0, "bleu1": 0.0}
    return {"f1": max(f1_fn(prediction, g) for g in golds),
            "em": max(locomo_em(prediction, g) for g in golds),
            "bleu1": max(mem0_bleu1(prediction, g) for g in golds)}


def answer_mem0_f1(prediction: str, golds: str | Sequence[str], category: str = "") -> float:
    """mem0-style F1 of one answer, best over golds (the scale of Memory-R1's published F1).

    mem0's evaluation scores the whole reference with no per-category rule (no ";" cut for
    open-domain, no comma split for multi-hop); adversarial questions, which Memory-R1 leaves
    out, take LoCoMo's rule as in `locomo_scores`, so every category has a value.
    """
    if category == "adversarial":
        return float(any(p in prediction.lower() for p in ADVERSARIAL_PHRASES))
    golds = [golds] if isinstance(golds, str) else list(golds)
    return max((mem0_f1(prediction, g) for g in golds), default=0.0)
