"""Answer scorers: plain functions `(prediction, gold or golds) -> float in [0, 1]`.

Semantics follow the official scripts they are named after: SQuAD/HotpotQA normalisation and token
F1 (with HotpotQA's yes/no/noanswer rule), MemAgent's verifiers (strict boxed EM for training,
sub-EM after normalisation for testing) and RULER's string matching. With several golds a scorer
returns its best match, except `string_match_all`, which by definition needs every gold.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

from memgym.errors import unknown_name

__all__ = [
    "normalize_answer", "extract_boxed", "exact_match", "f1", "sub_em", "strict_boxed_em",
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


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` in `text` (nested braces allowed), or None if none closes."""
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
        start = text.rfind("\\boxed{", 0, start)  # unclosed: fall back to an earlier box
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
    """1.0 if a normalised gold answer occurs inside the normalised prediction (MemAgent's test verifier)."""
    norm = normalize_answer(prediction)
    return _best(lambda p, g: float(bool(normalize_answer(g)) and normalize_answer(g) in norm),
                 prediction, gold)


def strict_boxed_em(prediction: str, gold: str | Sequence[str]) -> float:
    """EM of the last `\\boxed{}` content; 0 when there is no closed box (MemAgent's training verifier)."""
    boxed = extract_boxed(prediction)
    return 0.0 if boxed is None else exact_match(boxed, gold)


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
    "strict_boxed_em": strict_boxed_em,
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
