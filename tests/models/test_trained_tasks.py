"""A fine-tuned named model warns when evaluated on the tasks it was trained on: its adapter
ships trained_tasks.json (fingerprints of its SFT tasks), and `memgym eval` checks the run's
tasks against it before it starts. Needs no prepared model: the record is in memgym."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from memgym.cli import main
from memgym.models import adapter_folder, local_folder
from memgym.models.trained_tasks import (
    TRAINED_TASKS_FILE,
    task_fingerprint,
    trained_tasks_overlap,
    warn_if_trained_on,
)

ROOT = Path(__file__).resolve().parents[2]
TUNED = "smollm2-135m-memagent"


def test_fingerprints_ignore_whitespace_but_not_the_answer():
    assert task_fingerprint("Who  wrote\nit?", ["Ann"]) == task_fingerprint("Who wrote it?", ["Ann"])
    assert task_fingerprint("Who wrote it?", ["Ann"]) != task_fingerprint("Who wrote it?", ["Bo"])


def test_the_adapters_sft_data_is_flagged_and_held_out_data_is_not():
    assert trained_tasks_overlap(TUNED, "MemAgent-HotpotQA-v0", {"num_docs": 10}, None) == \
        list(range(20))  # the bundled HotpotQA sample is its SFT data, at any document count
    assert trained_tasks_overlap(TUNED, "MemAgent-SQuAD-v0", {}, None) == []
    assert trained_tasks_overlap(TUNED, "MemAgent-Synthetic-v0", {}, 80) == list(range(60))
    assert trained_tasks_overlap(TUNED, "MemAgent-Synthetic-v0", {"seed": 1001}, 64) == []


def test_models_without_a_training_record_never_warn(capsys):
    for model in ("embedded", "smollm2-135m-instruct", "someone/else", None):
        assert warn_if_trained_on(model, "MemAgent-HotpotQA-v0", {}, None) is None
    assert capsys.readouterr().err == ""


def test_the_prepared_folder_of_the_model_is_recognised_like_its_name():
    folder = str(local_folder(TUNED))
    assert trained_tasks_overlap(folder, "MemAgent-HotpotQA-v0", {}, 3) == [0, 1, 2]


def test_memgym_eval_warns_before_it_runs_on_training_tasks(tmp_path, capsys):
    code = main(["eval", "--env", "MemAgent-Synthetic-v0", "--agent",
                 str(ROOT / "agents" / "scripted_oracle.yaml"), "--model", TUNED,
                 "--episodes", "2", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0
    assert f"warning: {TUNED} was trained on 2 of the tasks" in err
    assert "task ids 0-1 of MemAgent-Synthetic-v0" in err and "not a held-out score" in err


def test_the_shipped_record_is_what_the_adapter_script_writes(tmp_path):
    script = ROOT / "bench" / "make_smollm2_memagent_adapter.py"
    spec = importlib.util.spec_from_file_location("make_adapter", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.record_trained_tasks(tmp_path, 60)
    shipped = adapter_folder(TUNED) / TRAINED_TASKS_FILE
    assert json.loads(written.read_text()) == json.loads(shipped.read_text())
