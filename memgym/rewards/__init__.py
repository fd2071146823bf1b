"""Answer extraction per format, scorers (EM, F1, MemAgent's sub-EM and boxed EM, RULER string
match, BLEU-1) and weighted rubrics."""

from memgym.rewards.extraction import (
    ANSWER_FORMATS,
    EXTRACTORS,
    check_answer_format,
    extract_answer,
    extract_answer_is,
    extract_boxed,
    extract_plain,
)
from memgym.rewards.rubric import EPISODE_RESULT_KEY, Rubric
from memgym.rewards.scorers import (
    SCORERS,
    bleu1,
    boxed_em_normalized,
    exact_match,
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

__all__ = [
    "ANSWER_FORMATS", "EPISODE_RESULT_KEY", "EXTRACTORS", "Rubric", "SCORERS", "bleu1",
    "boxed_em_normalized",
    "check_answer_format", "exact_match", "extract_answer", "extract_answer_is", "extract_boxed",
    "extract_plain", "f1", "get_scorer", "gold_in_pred_em", "normalize_answer", "reads_raw_text",
    "strict_boxed_em", "string_match_all", "string_match_part", "sub_em",
]
