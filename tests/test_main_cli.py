"""The `memgym` command line (memgym/cli.py): `memgym envs` lists every registered id."""

import subprocess
import sys

from memgym.cli import main
from memgym.envs.registration import ENV_DESCRIPTIONS


def test_envs_lists_every_id(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for env_id in ENV_DESCRIPTIONS:
        assert env_id in out


def test_console_script_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "memgym.cli", "envs"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "MemAgent-HotpotQA-v0" in result.stdout
