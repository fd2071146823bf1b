"""An unknown recipe key names the nearest few keys and `memgym train --help-keys` (it once
listed all ~70 keys on one line), and that command lists every key with its default and meaning."""

from __future__ import annotations

import dataclasses

import pytest

from memgym.cli import main
from memgym.errors import ConfigError
from memgym.trainer.cli import key_help
from memgym.trainer.config import GRPOConfig, load_config


def test_an_unknown_key_shows_the_nearest_few_and_the_help_command():
    with pytest.raises(ConfigError) as err:
        load_config({"max_step": 2})
    message = str(err.value)
    assert "max_step: unknown key. Did you mean 'max_steps'?" in message
    assert "nearest keys: max_steps" in message and "`memgym train --help-keys`" in message
    assert "vllm_server_urls" not in message and len(message) < 300  # not the whole list


def test_a_small_config_still_lists_every_valid_key():
    from memgym.config import from_dict

    @dataclasses.dataclass
    class Small:
        alpha: int = 1
        beta: int = 2

    with pytest.raises(ConfigError, match=r"alpah: unknown key\. Did you mean 'alpha'\? "
                                          r"\(valid keys: alpha, beta\)"):
        from_dict(Small, {"alpah": 3})


def test_help_keys_lists_every_key_with_its_default_and_meaning(capsys):
    rows = key_help()
    assert [r[0] for r in rows] == [f.name for f in dataclasses.fields(GRPOConfig)]
    by_key = {key: (default, meaning) for key, default, meaning in rows}
    assert by_key["max_steps"][0] == repr(GRPOConfig().max_steps) and by_key["max_steps"][1]
    assert main(["train", "--help-keys"]) == 0
    out = capsys.readouterr().out
    assert "learning_rate" in out and "frozen_reader" in out


def test_train_without_a_recipe_says_what_to_pass(capsys):
    assert main(["train"]) == 2
    assert "--help-keys" in capsys.readouterr().err
