"""The `memgym` command line (memgym/cli.py): `memgym envs` lists every registered id,
`--version`, Ctrl-C as one line with the --resume hint and exit status 130 (in-process and a
real SIGINT to `memgym eval`), and a subcommand whose import fails is not hidden."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import memgym
from memgym import cli
from memgym.cli import main
from memgym.envs.registration import ENV_DESCRIPTIONS

ROOT = Path(__file__).parents[1]


def test_envs_lists_every_id(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for env_id in ENV_DESCRIPTIONS:
        assert env_id in out


def test_console_script_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "memgym.cli", "envs"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0 and "MemAgent-HotpotQA-v0" in result.stdout


def test_version_prints_the_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"memgym {memgym.__version__}"


@pytest.mark.parametrize("command", ["eval", "train"])
def test_ctrl_c_is_one_line_with_the_resume_hint_and_status_130(command, monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    parser = cli.build_parser()
    args = parser.parse_args([command, *(["--env", "x", "--agent", "a", "--out", "o"]
                                         if command == "eval" else ["recipe.yaml"])])
    args._run = interrupted
    monkeypatch.setattr(cli, "build_parser", lambda: _Fixed(args))
    assert main([]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"memgym {command}: interrupted")
    assert "--resume" in err[0] and "Traceback" not in err[0]


class _Fixed:
    """A parser stand-in that returns pre-parsed arguments."""

    def __init__(self, args):
        self.args = args

    def parse_args(self, argv):
        return self.args


def test_a_subcommand_whose_import_fails_is_not_hidden(monkeypatch):
    monkeypatch.setitem(cli.SUBCOMMANDS, "broken", ("memgym_no_such_module_xyz", "broken"))
    with pytest.raises(ModuleNotFoundError, match="memgym_no_such_module_xyz"):
        main(["envs"])


SLOW = '''
import time


def slow(request):
    """Answers slowly, so Ctrl-C lands mid-run."""
    time.sleep(0.3)
    return "notes"
'''


def test_a_real_sigint_to_eval_prints_no_traceback(tmp_path):
    (tmp_path / "slow_policy.py").write_text(SLOW)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "memgym.cli", "eval", "--env", "MemAgent-Synthetic-v0",
         "--agent", str(ROOT / "agents" / "memagent.yaml"), "--backend", "scripted",
         "--model", "slow_policy:slow", "--concurrency", "1", "--out", str(out),
         "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell that started us in the background ignores SIGINT; give the child the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        deadline = time.time() + 60
        while not (out / "predictions.jsonl").exists() and time.time() < deadline:
            time.sleep(0.1)  # the run has started (run.json, then the first episode)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "interrupted" in err and "--resume" in err
