"""`adapter` models (memgym/models): a named base plus a LoRA adapter shipped in memgym, merged
by `memgym models prepare` into a plain model folder. The merge is checked on memgym's embedded
tiny model (fast, always runs); `smollm2-135m-memagent` itself, merged from the shipped adapter,
must write MemAgent's `\\boxed{}` where SmolLM2 does not (skipped when SmolLM2 is absent)."""

import dataclasses
import hashlib
import json
import os

import pytest

from memgym.agents.prompts import MEMAGENT_FINAL
from memgym.errors import ConfigError
from memgym.models import preparation, registry, resolve_model_path
from memgym.testing.models import needs_models

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
NAME, BASE = "smollm2-135m-memagent", "smollm2-135m-instruct"
USER_MODELS = registry.cache_dir()  # read before the `cache` fixture points MEMGYM_CACHE away


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMGYM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_the_shipped_adapter_is_a_few_mb_lora_on_the_attention_of_its_base():
    spec = registry.get_spec(NAME)
    folder = registry.adapter_folder(NAME)
    weights = folder / "adapter_model.safetensors"
    assert spec.kind == "adapter" and spec.base == BASE and spec.license == "Apache-2.0"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == spec.sha256
    assert 1e6 < weights.stat().st_size < 10e6
    config = json.loads((folder / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    log = json.loads((folder / "training_log.json").read_text())
    assert log["adapter_sha256"] == spec.sha256 and log["base"] == BASE
    first, last = log["loss_curve"][0]["loss"], log["loss_curve"][-1]["loss"]
    assert last < first / 2  # it learnt the format


def test_an_unprepared_adapter_model_fails_at_once_naming_the_prepare_command(cache):
    with pytest.raises(ConfigError, match=f"run `memgym models prepare {NAME}`.*{BASE}"):
        resolve_model_path(NAME)


def test_adapter_folder_refuses_a_model_that_is_not_an_adapter():
    with pytest.raises(ConfigError, match="not an adapter"):
        registry.adapter_folder(BASE)


def _tiny_adapter(folder):
    """A LoRA adapter with non-zero B on memgym's embedded model, saved to `folder`."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(registry.local_folder("embedded")))
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    peft_model.save_pretrained(folder)
    return peft_model, hashlib.sha256((folder / "adapter_model.safetensors").read_bytes())


def test_prepare_merges_the_adapter_into_a_folder_that_loads_without_peft(
        cache, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    peft_model, digest = _tiny_adapter(tmp_path / "adapter")
    spec = dataclasses.replace(registry.get_spec(NAME), name="tiny-merged", base="embedded",
                               sha256=digest.hexdigest())
    monkeypatch.setitem(registry.MODELS, "tiny-merged", spec)
    monkeypatch.setattr(preparation, "adapter_folder", lambda name: tmp_path / "adapter")
    folder = preparation.prepare("tiny-merged", log=lambda line: None)
    assert resolve_model_path("tiny-merged") == str(folder) == str(cache / "tiny-merged")
    marker = json.loads((folder / registry.MARKER).read_text())
    assert marker["base"] == "embedded" and marker["sha256"] == digest.hexdigest()
    assert not (folder / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(folder))
    ids = torch.tensor([[1, 5, 9, 17, 33]])
    with torch.no_grad():
        want, got = peft_model(input_ids=ids).logits, merged(input_ids=ids).logits
    assert torch.allclose(want, got, atol=1e-5)
    with peft_model.disable_adapter(), torch.no_grad():
        assert not torch.allclose(peft_model(input_ids=ids).logits, got, atol=1e-3)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert tokenizer.chat_template  # the base's tokenizer files came along
    mtime = os.stat(folder / "model.safetensors").st_mtime_ns
    preparation.prepare("tiny-merged", log=lambda line: None)  # present: no work
    assert os.stat(folder / "model.safetensors").st_mtime_ns == mtime


def test_an_adapter_whose_sha256_differs_is_refused_and_leaves_nothing(
        cache, tmp_path, monkeypatch):
    _tiny_adapter(tmp_path / "adapter")
    spec = dataclasses.replace(registry.get_spec(NAME), name="tiny-merged", base="embedded",
                               sha256="0" * 64)
    monkeypatch.setitem(registry.MODELS, "tiny-merged", spec)
    monkeypatch.setattr(preparation, "adapter_folder", lambda name: tmp_path / "adapter")
    with pytest.raises(ConfigError, match="sha256"):
        preparation.prepare("tiny-merged", log=lambda line: None)
    assert not (cache / "tiny-merged").exists()
    assert not list(cache.glob(".tiny-merged.partial-*"))


PROMPT = MEMAGENT_FINAL.render(
    question="Which city is the band that made the album \"Reflektor\" based in?",
    memory="- Arcade Fire: Arcade Fire is a Canadian indie rock band based in Montreal, "
           "Quebec.\n- Reflektor: Reflektor is the fourth studio album by Arcade Fire.")


def _answer(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}],
                                        add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=24, do_sample=False, pad_token_id=2)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


@needs_models(BASE)
@pytest.mark.slow
def test_smollm2_memagent_merged_from_the_shipped_adapter_boxes_where_smollm2_does_not(
        cache):
    if not (USER_MODELS / BASE / registry.MARKER).is_file():
        pytest.skip(f"{BASE} is not prepared here; run `memgym models prepare {BASE}`")
    cache.mkdir(parents=True)
    (cache / BASE).symlink_to(USER_MODELS / BASE)  # the prepared base, read where it is
    assert registry.is_present(BASE)
    folder = preparation.prepare(NAME, log=lambda line: None)  # merges the shipped adapter
    base_answer, tuned_answer = _answer(str(cache / BASE)), _answer(str(folder))
    assert "\\boxed{" not in base_answer
    assert "\\boxed{" in tuned_answer  # the protocol; its answer here is wrong ("Reflektor")
