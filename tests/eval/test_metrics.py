"""summarize(): means and 95% CIs over per-task means computed by hand (Wilson for binary scores,
a seeded bootstrap otherwise, both inside [0, 1]), avg@K and best-of-K, de-duplicated resumed rows,
incomplete rows left out of the metrics, breakdowns by task type / num_docs / length,
efficiency, dataset hash."""

import math

import pytest

from memgym.eval.metrics import bootstrap_ci, dataset_hash, mean_ci, summarize, wilson_ci


def row(task_id, attempt, accuracy, *, task_type="bridge", num_docs=50, latency=1.0,
        prompt=100, failed=0, meta=None):
    return {
        "task_id": task_id, "attempt": attempt, "question": f"q{task_id}", "golds": [f"a{task_id}"],
        "task_type": task_type, "metadata": meta if meta is not None else {"num_docs": num_docs},
        "reward": accuracy, "reward_components": {"accuracy": accuracy, "format": 1.0},
        "num_chunks": 3, "failed_calls": failed, "format_errors": [],
        "turns": [{"prompt_tokens": prompt, "completion_tokens": 10, "latency_s": latency / 2}],
        "tokens": {"prompt": prompt, "completion": 10, "total": prompt + 10, "llm_calls": 1,
                   "max_prompt": prompt, "peak_context": prompt, "memory": 5, "estimated": False},
        "latency_s": latency,
    }


def test_mean_ci_by_hand():
    block = mean_ci([1.0, 0.0, 1.0, 1.0])
    std = math.sqrt(((0.25 ** 2) * 3 + 0.75 ** 2) / 3)
    assert block["mean"] == 0.75 and block["n"] == 4
    assert block["std"] == pytest.approx(std)
    assert block["ci_method"] == "wilson" and block["ci95"] == wilson_ci(3, 4)
    assert mean_ci([0.5]) == {"mean": 0.5, "ci95": None, "std": None, "n": 1, "ci_method": None}
    assert mean_ci([])["mean"] is None


def test_wilson_interval_of_2_of_20_stays_inside_0_1():
    # by hand, z = 1.959964, z^2 = 3.841459: centre = (0.1 + 3.841459 / 40) / (1 + 3.841459 / 20)
    # = 0.164450; half = (1.959964 / 1.192073) * sqrt(0.1 * 0.9 / 20 + 3.841459 / 1600) = 0.136584
    block = mean_ci([1.0] * 2 + [0.0] * 18)
    assert block["mean"] == pytest.approx(0.1) and block["ci_method"] == "wilson"
    assert block["ci95"] == pytest.approx([0.027866, 0.301034], abs=2e-6)
    assert 0.0 < block["ci95"][0] < 0.1 < block["ci95"][1] < 1.0  # normal approx: [-0.035, 0.235]
    assert wilson_ci(0, 10)[0] == 0.0 and wilson_ci(10, 10)[1] == 1.0


def test_fractional_scores_get_a_seeded_bootstrap_inside_their_range():
    values = [0.0, 0.5, 0.25, 0.0, 1.0, 0.0, 0.75, 0.0]
    block = mean_ci(values)
    assert block["ci_method"] == "bootstrap"
    assert block["ci95"] == mean_ci(values)["ci95"] == bootstrap_ci(values)  # deterministic
    low, high = block["ci95"]
    assert 0.0 <= low < block["mean"] < high <= 1.0
    assert bootstrap_ci([0.5, 0.5, 0.5]) == [0.5, 0.5]


def test_summary_says_which_interval_each_metric_uses():
    rows = [row(0, 0, 1.0), row(0, 1, 0.0), row(1, 0, 1.0), row(1, 1, 1.0)]
    summary = summarize(rows)  # per-task accuracy 0.5 and 1.0: not binary, so bootstrap
    assert summary["ci_method"] == {"reward": "bootstrap", "accuracy": "bootstrap",
                                    "format": "wilson"}
    assert summary["best_of_k_accuracy"]["ci_method"] == "wilson"


def test_rows_with_failed_calls_are_counted_but_not_scored():
    rows = [row(0, 0, 1.0), row(1, 0, 0.0, failed=3), row(2, 0, 0.0)]
    summary = summarize(rows)
    assert summary["episodes"] == 2 and summary["incomplete_episodes"] == 1
    assert summary["metrics"]["accuracy"]["mean"] == 0.5 and summary["tasks"] == 2
    assert summary["errors"] == {"episodes_with_failed_calls": 1, "failed_calls": 3,
                                 "episodes_with_format_errors": 0}
    rerun = summarize(rows + [row(1, 0, 1.0)])  # resume reran it: the new row is a result
    assert rerun["incomplete_episodes"] == 0 and rerun["episodes"] == 3


def test_avg_at_k_averages_attempts_within_a_task_first():
    rows = [row(0, 0, 1.0), row(0, 1, 0.0), row(0, 2, 1.0), row(0, 3, 0.0),
            row(1, 0, 1.0), row(1, 1, 1.0), row(1, 2, 1.0), row(1, 3, 1.0)]
    summary = summarize(rows)
    assert summary["episodes"] == 8 and summary["tasks"] == 2
    assert summary["attempts_per_task"] == {"min": 4, "max": 4}
    accuracy = summary["metrics"]["accuracy"]
    assert accuracy["mean"] == 0.75 and accuracy["n"] == 2  # tasks, not episodes
    assert accuracy == mean_ci([0.5, 1.0])
    assert summary["best_of_k_accuracy"]["mean"] == 1.0
    assert summary["metrics"]["format"]["mean"] == 1.0


def test_a_rerun_row_replaces_the_old_one():
    rows = [row(0, 0, 0.0), row(1, 0, 1.0), row(0, 0, 1.0)]
    summary = summarize(rows)
    assert summary["episodes"] == 2 and summary["metrics"]["reward"]["mean"] == 1.0


def test_breakdowns_and_efficiency():
    rows = [row(0, 0, 1.0, task_type="bridge", num_docs=50, latency=1.0, prompt=100),
            row(1, 0, 0.0, task_type="comparison", num_docs=100, latency=3.0, prompt=300),
            row(2, 0, 1.0, task_type="bridge", num_docs=100, latency=2.0, prompt=200,
                meta={"target_tokens": 8192}),
            row(3, 0, 0.0, task_type="bridge", meta={"context_tokens": 5000})]
    summary = summarize(rows)
    assert summary["by_task_type"]["bridge"]["accuracy"]["mean"] == pytest.approx(2 / 3)
    assert summary["by_task_type"]["comparison"]["episodes"] == 1
    assert list(summary["by_num_docs"]) == ["50", "100"]
    assert summary["by_num_docs"]["100"]["accuracy"]["mean"] == 0.0
    assert summary["by_length"] == {
        "8192": {"episodes": 2, "tasks": 2, **{k: v for k, v in summarize(
            [rows[2], rows[3]])["metrics"].items()}}}
    assert summary["by_num_chunks"]["3"]["episodes"] == 4
    eff = summary["efficiency"]
    assert eff["prompt_tokens_total"] == 700 and eff["completion_tokens_total"] == 40
    assert eff["episode_latency_s"]["p50"] == 1.5 and eff["episode_latency_s"]["max"] == 3.0
    assert eff["episode_latency_s"]["p95"] == pytest.approx(2.85)
    assert eff["peak_prompt_tokens"]["max"] == 300 and eff["final_memory_tokens"]["mean"] == 5


def test_dataset_hash_depends_on_the_tasks_not_the_row_order():
    rows = [row(0, 0, 1.0), row(1, 0, 0.0)]
    assert dataset_hash(rows) == dataset_hash(rows[::-1]) == summarize(rows)["dataset_hash"]
    changed = [row(0, 0, 1.0), {**row(1, 0, 0.0), "golds": ["other"]}]
    assert dataset_hash(changed) != dataset_hash(rows)
    assert dataset_hash(rows).startswith("sha256:")
