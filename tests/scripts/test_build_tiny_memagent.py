"""scripts/build_tiny_memagent.py (how the embedded tiny MemAgent model was made): its teacher,
and the script run as a user runs it, writing a loadable model folder."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))

from build_tiny_memagent import teacher_memory


def test_teacher_is_the_oracle_unless_stale():
    question = "What is the code of red otter?"
    first = teacher_memory(question, "No previous memory", "The code of red otter is 123.",
                           stale=True)
    assert first == "red otter: 123"
    update = "The code of red otter changed to 456."
    assert teacher_memory(question, first, update, stale=False) == "red otter: 456"
    assert teacher_memory(question, first, update, stale=True) == "red otter: 123"
    assert teacher_memory(question, "No previous memory", "The lake is calm.",
                          stale=False) == "No relevant information yet."


def test_the_script_writes_a_loadable_model(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    args = ["--out", str(tmp_path), "--episodes", "12", "--steps", "2", "--batch-size", "4",
            "--warmup-steps", "1", "--buffer-size", "24", "--hidden-size", "32",
            "--num-layers", "1", "--intermediate-size", "64"]
    out = subprocess.run([sys.executable, str(SCRIPTS / "build_tiny_memagent.py"), *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "BUILD.json").read_text())
    assert record["demonstration_episodes"] == 16
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert model.config.vocab_size == len(tokenizer)
