"""`memgym models merge CKPT OUT`: a LoRA checkpoint becomes a plain model folder (the base's
weights plus the adapter's, the base's tokenizer) that loads without peft and generates what
the adapter-wrapped model generates; a full checkpoint or a LoRA folder given as --model is
refused with the command to run."""

from __future__ import annotations

import pytest

from memgym.cli import main
from memgym.errors import ConfigError
from memgym.models import local_folder, resolve_model_path
from memgym.models.merge import merge_checkpoint

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
from transformers import AutoModelForCausalLM, AutoTokenizer


@pytest.fixture
def lora_checkpoint(tmp_path):
    """An adapter on the embedded model with non-zero LoRA B weights (as after training)."""
    base = AutoModelForCausalLM.from_pretrained(str(local_folder("embedded")))
    torch.manual_seed(0)
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    folder = tmp_path / "run" / "checkpoint-3"
    model.save_pretrained(str(folder))
    return folder, model


def _greedy(model, tokenizer, text="Question: what is the code of pink panda?"):
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model.generate(ids, max_new_tokens=8, do_sample=False)[0].tolist()


def test_merged_folder_loads_without_peft_and_generates_like_the_adapter(lora_checkpoint,
                                                                         tmp_path):
    folder, wrapped = lora_checkpoint
    out = merge_checkpoint(folder, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(out))  # the base's, copied
    assert not hasattr(merged, "peft_config")
    assert _greedy(merged, tokenizer) == _greedy(wrapped.eval(), tokenizer)
    base = AutoModelForCausalLM.from_pretrained(str(local_folder("embedded")))
    assert any(not torch.equal(a, b) for a, b in zip(base.parameters(), merged.parameters()))


def test_the_cli_merges_and_says_how_to_evaluate(lora_checkpoint, tmp_path, capsys):
    folder, _ = lora_checkpoint
    assert main(["models", "merge", str(folder), str(tmp_path / "m"), "--base", "embedded"]) == 0
    assert f"--model {tmp_path / 'm'}" in capsys.readouterr().out
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert not (tmp_path / "m.partial").exists()


def test_a_lora_checkpoint_as_model_names_the_merge_command(lora_checkpoint):
    folder, _ = lora_checkpoint
    with pytest.raises(ConfigError, match=f"LoRA checkpoint .*`memgym models merge {folder} "):
        resolve_model_path(str(folder))


def test_merge_refuses_a_full_checkpoint_and_a_folder_that_holds_files(lora_checkpoint,
                                                                       tmp_path):
    folder, _ = lora_checkpoint
    with pytest.raises(ConfigError, match="full model .*nothing to merge.*--model"):
        merge_checkpoint(local_folder("embedded"), tmp_path / "x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    with pytest.raises(ConfigError, match="already holds files"):
        merge_checkpoint(folder, tmp_path / "busy")
    with pytest.raises(ConfigError, match="no adapter_config.json"):
        merge_checkpoint(tmp_path / "busy", tmp_path / "y")
