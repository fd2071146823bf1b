"""Answer scorers: plain functions `(prediction, gold or golds) -> float in [0, 1]`.

Scorers named after a reference behave exactly like it:
  - `exact_match`, `f1`: SQuAD/HotpotQA normalisation and token F1, with HotpotQA's
    yes/no/noanswer rule (hotpot_evaluate_v1.py); best over golds.
  - `sub_em`: MemAgent's test verifier (taskutils/memory_eval/utils/__init__.py
    `sub_exact_match_score`, as ruler_hqa.py applies it): 0 for an empty prediction, scored
    against the FIRST gold only, 1 if the normalised gold is in the normalised prediction OR the
    prediction in the gold (so a prediction that normalises to "" scores 1, as in MemAgent).
  - `strict_boxed_em`: MemAgent's training reward (verl/utils/reward_score/hotpotqa.py
    `compute_score`): the last 300 characters, lowercased; the last `\\boxed{...}` or
    `\\boxed ...` (an unclosed last box or an `\\fbox{}` scores 0); MemAgent's `strip_string` on
    both sides; exact equality; best over golds. It reads the raw completion (see
    `reads_raw_text`).
  - `string_match_all`, `string_match_part`: RULER's string matching.
memgym's own, more forgiving variants keep names that say what they do: `gold_in_pred_em` (a
non-empty normalised gold inside the normalised prediction, best over golds) and
`boxed_em_normalized` (SQuAD EM of the last closed box anywhere in the text, falling back to an
earlier box when the last is unclosed).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

from memgym.errors import unknown_name
from memgym.rewards.extraction import extract_boxed, last_boxed_only_string, remove_boxed

__all__ = [
    "normalize_answer", "extract_boxed", "exact_match", "f1", "sub_em", "gold_in_pred_em",
    "strict_boxed_em", "boxed_em_normalized", "reads_raw_text",
    "string_match_all", "string_match_part", "bleu1", "SCORERS", "get_scorer", "Scorer",
]

Scorer = Callable[[str, "str | Sequence[str]"], float]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _golds(gold: str | Sequence[str]) -> list[str]:
    return [gold] if isinstance(gold, str) else list(gold)


def _best(score: Callable[[str, str], float], prediction: str, gold: str | Sequence[str]) -> float:
    golds = _golds(gold)
    return max((score(prediction, g) for g in golds), default=0.0)


def _last_closed_box(text: str) -> str | None:
    """Content of the last closed `\\boxed{...}` (nested braces allowed), falling back to an
    earlier box when the last is unclosed (memgym's lenient reading, for `boxed_em_normalized`)."""
    start = text.rfind("\\boxed{")
    while start != -1:
        depth, i = 0, start + len("\\boxed")
        for j in range(i, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1 : j]
        start = text.rfind("\\boxed{", 0, start)
    return None


def exact_match(prediction: str, gold: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer."""
    norm = normalize_answer(prediction)
    return _best(lambda p, g: float(norm == normalize_answer(g)), prediction, gold)


def _f1_one(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    # HotpotQA's rule: yes/no/noanswer must match exactly, never partially.
    if (pred in ("yes", "no", "noanswer") or ref in ("yes", "no", "noanswer")) and pred != ref:
        return 0.0
    pred_toks, ref_toks = pred.split(), ref.split()
    common = Counter(pred_toks) & Counter(ref_toks)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(ref_toks)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, gold: str | Sequence[str]) -> float:
    """Token F1 after SQuAD normalisation (HotpotQA evaluation semantics), best over golds."""
    return _best(_f1_one, prediction, gold)


def sub_em(prediction: str, gold: str | Sequence[str]) -> float:
    """MemAgent's test verifier: gold in prediction OR prediction in gold, after normalisation.

    Exactly as taskutils/memory_eval/ruler_hqa.py scores it: 0 for an empty prediction; only the
    first gold counts (`answers[0]`); `sub_exact_match_score` on SQuAD-normalised text, so a
    non-empty prediction that normalises to "" (e.g. "the") scores 1.
    """
    golds = _golds(gold)
    if not prediction or not golds:
        return 0.0
    pred, ref = normalize_answer(prediction), normalize_answer(golds[0])
    return float(ref in pred or pred in ref)


def gold_in_pred_em(prediction: str, gold: str | Sequence[str]) -> float:
    """1.0 if a non-empty normalised gold occurs in the normalised prediction, best over golds.

    memgym's one-directional sub-EM (the `sub_em` of memgym <= 0.1): never credits a prediction
    that is merely part of the gold, so it cannot be gamed by answering "the" or one word.
    """
    norm = normalize_answer(prediction)
    return _best(lambda p, g: float(bool(normalize_answer(g)) and normalize_answer(g) in norm),
                 prediction, gold)


def _strip_string(text: str) -> str:
    """MemAgent's `strip_string` (from lm-eval's hendrycks_math), step by step, in its order."""
    for old, new in (("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"),
                     ("dfrac", "frac"), ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""),
                     ("^\\circ", ""), ("\\$", ""), ("\\%", ""), (" .", " 0."), ("{.", "{0.")):
        text = text.replace(old, new)
    return text.replace(" ", "")


def strict_boxed_em(prediction: str, gold: str | Sequence[str]) -> float:
    """MemAgent's training reward (verl/utils/reward_score/hotpotqa.py), on the raw completion.

    The last 300 characters, lowercased; the last box by `last_boxed_only_string` (0 when the last
    box is unclosed or is an `\\fbox`); its content and each lowercased gold through MemAgent's
    `strip_string` (every space, newline, `\\$`, `\\%` ... dropped); 1.0 on exact equality with
    any gold. No article or punctuation removal.
    """
    golds = _golds(gold)
    boxed = last_boxed_only_string(prediction[-300:].lower())
    answer = None if boxed is None else remove_boxed(boxed)
    if answer is None:
        return 0.0
    answer = _strip_string(answer)
    return float(any(answer == _strip_string(g.lower()) for g in golds))


def boxed_em_normalized(prediction: str, gold: str | Sequence[str]) -> float:
    """SQuAD EM of the last closed `\\boxed{}` anywhere in the raw completion; 0 without one.

    memgym's lenient boxed verifier (the `strict_boxed_em` of memgym <= 0.1): the whole text,
    an earlier box when the last is unclosed, and SQuAD normalisation (articles, punctuation).
    """
    boxed = _last_closed_box(prediction)
    return 0.0 if boxed is None else exact_match(boxed, gold)


strict_boxed_em.reads_raw_text = True  # type: ignore[attr-defined]
boxed_em_normalized.reads_raw_text = True  # type: ignore[attr-defined]


def reads_raw_text(scorer: Scorer) -> bool:
    """Whether `scorer` does its own answer extraction and so must see the raw completion.

    The env hands such a scorer the whole answer action instead of the text its answer format
    extracts (mark your own with `fn.reads_raw_text = True`).
    """
    return bool(getattr(scorer, "reads_raw_text", False))


def string_match_all(prediction: str, gold: str | Sequence[str]) -> float:
    """Fraction of gold strings found (case-insensitive) in the prediction (RULER's metric)."""
    golds, pred = _golds(gold), prediction.lower()
    return sum(g.lower() in pred for g in golds) / len(golds) if golds else 0.0


def string_match_part(prediction: str, gold: str | Sequence[str]) -> float:
    """1.0 if any gold string occurs (case-insensitive) in the prediction (RULER's QA metric)."""
    pred = prediction.lower()
    return float(any(g.lower() in pred for g in _golds(gold)))


def _bleu1_one(prediction: str, gold: str) -> float:
    import math

    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return 0.0
    overlap = sum((Counter(pred) & Counter(ref)).values())
    precision = overlap / len(pred)
    brevity = 1.0 if len(pred) > len(ref) else math.exp(1 - len(ref) / len(pred))
    return brevity * precision


def bleu1(prediction: str, gold: str | Sequence[str]) -> float:
    """Unigram BLEU with brevity penalty after normalisation (LoCoMo's BLEU-1), best over golds."""
    return _best(_bleu1_one, prediction, gold)


SCORERS: dict[str, Scorer] = {
    "exact_match": exact_match,
    "em": exact_match,
    "f1": f1,
    "sub_em": sub_em,
    "gold_in_pred_em": gold_in_pred_em,
    "strict_boxed_em": strict_boxed_em,
    "boxed_em_normalized": boxed_em_normalized,
    "string_match_all": string_match_all,
    "string_match_part": string_match_part,
    "bleu1": bleu1,
}


def get_scorer(name: str | Scorer) -> Scorer:
    """Look up a scorer by name (see SCORERS), or return a callable unchanged."""
    if callable(name):
        return name
    if name not in SCORERS:
        raise unknown_name("scorer", name, SCORERS)
    return SCORERS[name]
