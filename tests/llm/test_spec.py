"""memgym.llm.build_backend: the one place a backend is built from a spec (CLI flags, a recipe
component's own backend, the frozen reader); its errors name the setting that is wrong."""

import pytest

from memgym.errors import ConfigError
from memgym.llm import BackendSpec, ScriptedBackend, build_backend


def test_a_scripted_spec_imports_its_policy():
    backend = build_backend(BackendSpec("scripted", model="memgym.data.synthetic:oracle_answer"))
    assert isinstance(backend, ScriptedBackend)


@pytest.mark.parametrize("spec, flag, match", [
    (BackendSpec("openai", model="qwen"), "--", "needs --base-url"),
    (BackendSpec("hf", model="x", base_url="http://a/v1"), "--", "--base-url is for backend openai"),
    (BackendSpec("scripted"), "extractor.backend.", "needs extractor.backend.model"),
    (BackendSpec("openai", model="q"), "frozen_reader.", "needs frozen_reader.base_url"),
    (BackendSpec("vllm"), "--", "needs --model"),
])
def test_a_bad_spec_names_the_setting(spec, flag, match):
    with pytest.raises(ConfigError, match=match):
        build_backend(spec, flag=flag)


def test_several_urls_spread_over_one_backend_per_server():
    from memgym.llm.balance import LoadBalancedBackend

    backend = build_backend(BackendSpec("openai", model="q",
                                        base_url=["http://127.0.0.1:9/v1", "http://127.0.0.1:8/v1"]))
    try:
        assert isinstance(backend, LoadBalancedBackend)
    finally:
        backend.close()
