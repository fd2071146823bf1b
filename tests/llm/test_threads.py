"""CPU threads: one helper (`set_torch_threads`) for eval, the trainer, the backend, quickstart."""

from __future__ import annotations

import pytest
import torch

from memgym.errors import ConfigError
from memgym.llm import DEFAULT_CPU_THREADS, set_torch_threads


@pytest.fixture(autouse=True)
def restore_threads():
    """Every test here changes torch's process-wide thread count: put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_default_is_one_thread_on_cpu(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    assert set_torch_threads(None, device="cpu") == DEFAULT_CPU_THREADS == 1
    assert torch.get_num_threads() == 1


def test_default_keeps_a_users_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    assert set_torch_threads(None, device="cpu") is None
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("threads", [2, "2"])
def test_a_number_sets_that_many_threads(threads):
    assert set_torch_threads(threads, device="cpu") == 2
    assert torch.get_num_threads() == 2


def test_auto_and_a_gpu_device_leave_torch_alone(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    assert set_torch_threads("auto", device="cpu") is None
    assert set_torch_threads(1, device="cuda") is None  # CPU threads only feed a GPU
    assert set_torch_threads(None, device=torch.device("cuda", 0)) is None
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, "two", "1.5", True])
def test_a_bad_thread_count_names_the_setting(bad):
    with pytest.raises(ConfigError, match=r"torch_threads=.*positive number.*'auto'"):
        set_torch_threads(bad, device="cpu", setting="torch_threads")


def test_transformers_backend_threads_option_sets_threads_on_cpu():
    from memgym.llm.hf import TransformersBackend
    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    torch.set_num_threads(1)
    backend = TransformersBackend(build_tiny_model(tokenizer), tokenizer, threads=2)
    backend.close()
    assert torch.get_num_threads() == 2
    with pytest.raises(ConfigError, match="threads='many'"):
        TransformersBackend(build_tiny_model(tokenizer), tokenizer, threads="many")
