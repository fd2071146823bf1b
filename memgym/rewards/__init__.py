"""Scorers (EM, F1, sub-EM, boxed EM, RULER string match, BLEU-1) and weighted rubrics."""

from memgym.rewards.rubric import Rubric
from memgym.rewards.scorers import (
    SCORERS, bleu1, exact_match, extract_boxed, f1, get_scorer, normalize_answer,
    strict_boxed_em, string_match_all, string_match_part, sub_em,
)

__all__ = [
    "Rubric", "SCORERS", "bleu1", "exact_match", "extract_boxed", "f1", "get_scorer",
    "normalize_answer", "strict_boxed_em", "string_match_all", "string_match_part", "sub_em",
]
