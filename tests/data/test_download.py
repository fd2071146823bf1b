"""`memgym data` (memgym.data.download): downloads into memgym's data cache from a source URL
(a local file:// URL here: no network in tests), checks the pinned size and sha256 before a
file appears, says what to download and where offline, and the envs and boards find the data in
the cache by default."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import gymnasium as gym
import pytest

import memgym  # noqa: F401  (registers the envs)
from memgym.cli import main
from memgym.data import download
from memgym.data.download import DATASETS, DataFile, data_dir, data_file, fetch
from memgym.errors import DataError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "locomo_mini.json"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """An empty memgym cache for each test."""
    monkeypatch.setenv("MEMGYM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "data"


def _serve(monkeypatch, source: Path, *, sha256: str | None = None, size: int | None = None
           ) -> DataFile:
    """Make the locomo dataset download `source` through a file:// URL, pinned to its hash."""
    data = source.read_bytes() if source.exists() else b""
    file = DataFile("locomo10.json", source.as_uri(),
                    hashlib.sha256(data).hexdigest() if sha256 is None else sha256,
                    len(data) if size is None else size)
    monkeypatch.setitem(DATASETS, "locomo", dataclasses.replace(DATASETS["locomo"], files=(file,)))
    return file


def test_the_cache_is_memgym_cache_data(cache):
    assert data_dir() == cache


def test_locomo_is_pinned_to_the_released_files_sha256():
    (file,) = DATASETS["locomo"].files
    assert file.url.startswith("https://raw.githubusercontent.com/snap-research/locomo/")
    assert file.sha256 == "79fa87e90f04081343b8c8debecb80a9a6842b76a7aa537dc9fdf651ea698ff4"
    assert file.size == 2805274


def test_get_downloads_into_the_cache_and_checks_the_pin(monkeypatch, cache):
    _serve(monkeypatch, FIXTURE)
    [(path, note)] = fetch("locomo")
    assert path == cache / "locomo10.json" and path.read_bytes() == FIXTURE.read_bytes()
    assert "sha256 matches the pin" in note
    assert "already present" in fetch("locomo")[0][1]
    assert data_file("locomo") == path


def test_a_file_that_does_not_match_its_pin_is_never_written(monkeypatch, cache):
    _serve(monkeypatch, FIXTURE, sha256="0" * 64)
    with pytest.raises(DataError, match="not the pinned .* nothing was written"):
        fetch("locomo")
    assert not cache.exists() or not any(cache.iterdir())


def test_offline_it_says_what_to_download_and_where_to_put_it(monkeypatch, cache, tmp_path):
    file = _serve(monkeypatch, tmp_path / "unreachable.json", sha256="1" * 64, size=1)
    with pytest.raises(DataError) as info:
        fetch("locomo")
    message = str(info.value)
    assert f"download {file.url} and save it as {cache / 'locomo10.json'}" in message
    assert "memgym data get locomo" in message
    assert not (cache / "locomo10.json").exists()


def test_an_unpinned_file_is_downloaded_and_its_hash_reported(monkeypatch, cache):
    file = DataFile("longmemeval_s_cleaned.json", FIXTURE.as_uri())
    monkeypatch.setitem(DATASETS, "longmemeval",
                        dataclasses.replace(DATASETS["longmemeval"], files=(file,)))
    [(path, note)] = fetch("longmemeval")
    assert hashlib.sha256(FIXTURE.read_bytes()).hexdigest() in note and "NOT checked" in note
    assert path.read_bytes() == FIXTURE.read_bytes()


def test_an_absent_file_names_the_get_command_and_the_url(cache):
    with pytest.raises(DataError, match=r"`memgym data get locomo`, or download https://raw\."
                                        r"githubusercontent\.com/snap-research/locomo/.* and "
                                        "save it as"):
        data_file("locomo")


def test_an_unknown_dataset_suggests_the_nearest():
    with pytest.raises(Exception, match="locomo"):
        fetch("locomoo")


def test_the_locomo_env_reads_the_cache_without_data_path(monkeypatch, cache):
    with pytest.raises(DataError, match="memgym data get locomo"):
        gym.make("MemoryR1-LoCoMo-v0")
    _serve(monkeypatch, FIXTURE)
    fetch("locomo")
    env = gym.make("MemoryR1-LoCoMo-v0")
    assert env.unwrapped.num_tasks == 3


def test_the_locomo_board_looks_in_the_cache_by_default(monkeypatch, cache):
    from memgym.leaderboard.board import load_board

    monkeypatch.delenv("MEMGYM_LOCOMO_DIR", raising=False)
    board = load_board(Path(__file__).parents[2] / "leaderboards" / "locomo")
    assert board.data_dir == cache
    assert board.settings[0].env_kwargs["data_path"] == f"{cache}/locomo10.json"


def test_cli_get_path_and_list(monkeypatch, cache, capsys):
    _serve(monkeypatch, FIXTURE)
    assert main(["data", "path", "locomo"]) == 2  # absent: a clear error, exit 2
    assert "memgym data get locomo" in capsys.readouterr().err
    assert main(["data", "get", "locomo"]) == 0
    assert "CC BY-NC 4.0" in capsys.readouterr().out
    assert main(["data", "path", "locomo"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "locomo10.json")
    assert main(["data"]) == 0
    assert "locomo: 1 file(s), present" in capsys.readouterr().out


def test_every_dataset_points_at_its_upstream_source():
    urls = [f.url for d in DATASETS.values() for f in d.files]
    assert all(u.startswith("https://") for u in urls)
    assert any("huggingface.co/datasets/xiaowu0162/longmemeval-cleaned/" in u for u in urls)
    assert any("huggingface.co/datasets/ai-hyz/MemoryAgentBench/" in u for u in urls)
    assert download.__doc__ and "not pinned" in download.__doc__
