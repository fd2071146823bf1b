"""memgym.llm package surface: make_backend names and errors, lazy imports, shared text helpers."""

import subprocess
import sys

import pytest

from memgym import llm
from memgym.errors import ConfigError, UnknownNameError
from memgym.llm import cut_at_stop, make_backend, strip_think


def test_make_backend_builds_scripted_and_is_case_insensitive():
    backend = make_backend("Scripted", policy=["x"])
    assert backend.name == "scripted"
    assert backend.generate_batch([llm.GenerationRequest(prompt="p")])[0].text == "x"


def test_unknown_backend_name_suggests_the_nearest():
    with pytest.raises(UnknownNameError, match="Did you mean 'vllm'"):
        make_backend("vlm")


def test_bad_constructor_arguments_name_the_backend():
    with pytest.raises(ConfigError, match="ScriptedBackend"):
        make_backend("scripted", policy=["x"], temperature=3)


def test_aliases_resolve_to_the_same_class():
    assert llm.BACKENDS["hf"] == llm.BACKENDS["transformers"] == "TransformersBackend"
    assert llm.TransformersBackend.__name__ == "TransformersBackend"
    with pytest.raises(AttributeError):
        llm.NoSuchBackend  # noqa: B018


def test_import_memgym_llm_stays_light():
    code = (
        "import sys, memgym.llm, memgym.llm.scripted; "
        "heavy = [m for m in ('torch', 'transformers', 'httpx', 'vllm') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cut_at_stop_uses_the_earliest_stop():
    assert cut_at_stop("a END b STOP", ["STOP", "END"]) == ("a ", True)
    assert cut_at_stop("nothing", ["X", ""]) == ("nothing", False)


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("<think>plan</think>\n\nanswer", "answer"),
        ("plan continues</think> answer", "answer"),  # template already opened <think>
        ("a<think>1</think>b<think>2</think>c", "abc"),
        ("answer <think>cut by the length limit", "answer "),
        ("no reasoning here", "no reasoning here"),
    ],
)
def test_strip_think(raw, clean):
    assert strip_think(raw) == clean
