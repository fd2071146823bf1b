"""Evaluation: run an agent on an env for N tasks x K attempts, write predictions, traces, metrics.

    >>> from memgym.eval import evaluate, summarize, read_jsonl
    >>> summary = evaluate("MemAgent-HotpotQA-v0", agent, out_dir="runs/x", episodes=128)
    >>> summarize(read_jsonl("runs/x/predictions.jsonl")) == summary["metrics"]
    True
"""

from memgym.eval.metrics import dataset_hash, mean_ci, summarize
from memgym.eval.records import prediction_row, read_jsonl, trace_row
from memgym.eval.runner import FailFast, evaluate, evaluate_async
from memgym.eval.shards import merge_shards, parse_shard

__all__ = ["FailFast", "dataset_hash", "evaluate", "evaluate_async", "mean_ci", "merge_shards",
           "parse_shard", "prediction_row", "read_jsonl", "summarize", "trace_row"]
