"""Agent recipes: every shipped recipe loads with its documented defaults; overrides apply; bad
keys, kinds, types and templates are ConfigErrors naming the file, the key and the nearest name."""

import subprocess
import sys
from pathlib import Path

import pytest
from agent_helpers import reader_backend

from memgym.agents import AGENT_KINDS, Agent, load_agent, load_recipe
from memgym.agents.bank_oracle import BankOracleAgent
from memgym.agents.baselines import FullContextAgent, OracleAgent, RetrievalAgent
from memgym.agents.dialogue_baselines import (
    DialogueFullContextAgent,
    DialogueOracleAgent,
    RagTurnsAgent,
)
from memgym.agents.memory_r1 import MemoryR1Agent
from memgym.agents.overwrite import OverwriteMemoryAgent
from memgym.agents.policy import ScriptedPolicyAgent
from memgym.agents.recipe import AgentKind, MemAgentConfig, register_agent_kind
from memgym.errors import ConfigError, UnknownNameError
from memgym.testing.models import recipe_params

AGENTS = Path(__file__).parents[2] / "agents"


from memgym.agents.rmm import RMMAgent  # noqa: E402

EXPECTED_KINDS = {"memagent": OverwriteMemoryAgent, "memagent_eval": OverwriteMemoryAgent,
                  "memagent_smollm2": OverwriteMemoryAgent,
                  "mem1": OverwriteMemoryAgent,
                  "full_context": FullContextAgent, "rag_bm25": RetrievalAgent,
                  "oracle": OracleAgent, "scripted_oracle": ScriptedPolicyAgent,
                  "bank_oracle": BankOracleAgent, "rmm": RMMAgent, "memory_r1": MemoryR1Agent,
                  "mem0_style": MemoryR1Agent, "rag_turns": RagTurnsAgent,
                  "dialogue_full_context": DialogueFullContextAgent,
                  "dialogue_oracle": DialogueOracleAgent}


def test_every_shipped_recipe_has_an_expected_agent_class():
    assert {p.stem for p in AGENTS.glob("*.yaml")} == set(EXPECTED_KINDS)


@pytest.mark.parametrize("recipe", recipe_params(AGENTS / f"{stem}.yaml" for stem in EXPECTED_KINDS))
def test_shipped_recipes_build_the_right_agents(recipe):
    agent = load_agent(recipe, reader_backend())
    assert isinstance(agent, EXPECTED_KINDS[recipe.stem]) and isinstance(agent, Agent)
    assert agent.name == recipe.stem
    assert recipe.read_text().startswith("#")  # every recipe names its source and defaults


def test_memagent_recipe_has_memagents_evaluation_settings():
    recipe = load_recipe(AGENTS / "memagent.yaml")
    assert recipe.to_dict() == {"kind": "memagent", **vars(MemAgentConfig())}
    agent = load_agent(AGENTS / "memagent.yaml", reader_backend())
    assert agent.update_sampling.max_new_tokens == 1024
    assert agent.answer_sampling.max_new_tokens == 1024
    assert (agent.update_sampling.temperature, agent.update_sampling.top_p) == (0.7, 0.95)
    assert recipe.source.endswith("memagent.yaml") and "kind: memagent" in recipe.text
    assert agent.answer_template.name == "memagent_final" and agent.answer_format == "boxed"


def test_memagent_eval_recipe_is_memagents_released_evaluation():
    agent = load_agent(AGENTS / "memagent_eval.yaml", reader_backend())
    assert agent.answer_template.name == "memagent_final_answer_is"
    assert agent.answer_format == "answer_is"
    assert 'follows "Therefore, the answer is (insert answer here)".' in \
        agent.answer_template.render(question="q", memory="m")
    for sampling in (agent.update_sampling, agent.answer_sampling):
        assert (sampling.temperature, sampling.top_p, sampling.max_new_tokens) == (0.7, 0.95, 1024)


def test_memagent_answer_format_picks_the_final_template_and_rejects_unknown_formats():
    agent = load_agent({"kind": "memagent", "answer_format": "answer_is"}, reader_backend())
    assert agent.answer_template.name == "memagent_final_answer_is"
    with pytest.raises(ConfigError, match="answer_format='latex'"):
        load_agent({"kind": "memagent", "answer_format": "latex"}, reader_backend())
    with pytest.raises(ConfigError, match="MemAgent's final prompts ask for boxed or answer_is"):
        load_agent({"kind": "memagent", "answer_format": "plain"}, reader_backend())


def test_overrides_apply_and_are_type_checked():
    agent = load_agent(AGENTS / "memagent.yaml", reader_backend(),
                       overrides=["temperature=0", "memory_max_new_tokens=256"])
    assert agent.update_sampling.temperature == 0.0
    assert agent.update_sampling.max_new_tokens == 256
    assert agent.answer_sampling.max_new_tokens == 1024
    with pytest.raises(ConfigError, match="temperature='hot'"):
        load_recipe(AGENTS / "memagent.yaml", ["temperature=hot"])


def test_unknown_key_names_the_file_and_the_closest_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: memagent\nmemory_max_new_token: 512\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    message = str(info.value)
    assert str(path) in message and "memory_max_new_token: unknown key" in message
    assert "Did you mean 'memory_max_new_tokens'?" in message
    with pytest.raises(ConfigError, match="Did you mean 'top_k'"):
        load_recipe({"kind": "rag_bm25", "topk": 3})


def test_unknown_or_missing_kind(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'memagent'"):
        load_recipe({"kind": "memagnet"})
    path = tmp_path / "nokind.yaml"
    path.write_text("temperature: 0.5\n")
    with pytest.raises(ConfigError, match="no 'kind'"):
        load_recipe(path)


def test_bad_template_and_scripted_paths():
    with pytest.raises(UnknownNameError, match="memagent_update"):
        load_agent({"kind": "memagent", "update_template": "memagent_updte"}, reader_backend())
    with pytest.raises(ConfigError, match="slots"):
        load_agent({"kind": "memagent", "update_template": "memagent_final"}, reader_backend())
    with pytest.raises(ConfigError, match="memory_fn"):
        load_agent({"kind": "scripted_policy", "memory_fn": "os.path:nope",
                    "answer_fn": "os.path:join"}, None)
    with pytest.raises(ConfigError, match="memory_fn"):
        load_agent({"kind": "scripted_policy", "answer_fn": "os.path:join"}, None)


def test_llm_kinds_need_a_backend_and_new_kinds_register():
    with pytest.raises(ConfigError, match="needs? .*backend|pass a backend"):
        load_agent({"kind": "memagent"}, None)
    assert AGENT_KINDS["scripted_policy"].needs_backend is False
    register_agent_kind("test_echo_kind", AgentKind(MemAgentConfig, lambda c, b: c, True))
    try:
        assert load_agent({"kind": "test_echo_kind", "top_k": 3}, object()).top_k == 3
        with pytest.raises(ConfigError, match="already registered"):
            register_agent_kind("test_echo_kind", AGENT_KINDS["memagent"])
    finally:
        del AGENT_KINDS["test_echo_kind"]


# -- components and users' kinds -------------------------------------------------------------
USER_MODULE = '''
from memgym.agents import LLMCall
from memgym.agents.recipe import MemoryR1Config


class NoteTaker:
    """Keeps nothing, answers a fixed word: an agent that makes no LLM call."""

    def __init__(self, *, answer: str = "Paris", name: str = "note_taker"):
        self.answer, self.name = answer, name

    async def act(self, observation, ctx):
        return "" if observation["phase"] == "update" else "\\\\boxed{" + self.answer + "}"


def reader_agent(*, backend, answerer: LLMCall = MemoryR1Config.answerer, top: int = 3):
    """A factory whose only LLM call is Memory-R1's answerer."""
    return {"answerer": answerer.bind(backend, component="answerer",
                                      slots=("memories", "question")), "top": top}


def unannotated(*, backend, answerer=MemoryR1Config.answerer):
    """A factory whose LLMCall parameter has no annotation."""
    return answerer
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_kinds.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_users_kind_is_imported_and_called_with_the_recipes_fields(user_module):
    built = load_agent({"kind": "user_kinds:reader_agent", "top": 5,
                        "answerer": {"temperature": 0.0}}, reader_backend())
    answerer = built["answerer"]
    assert built["top"] == 5 and answerer.component == "answerer"
    assert answerer.template.name == "memory_r1_answer"  # the default's, kept under the override
    assert (answerer.sampling.temperature, answerer.sampling.max_new_tokens) == (0.0, 256)
    recipe = load_recipe("user_kinds:reader_agent", ["top=4"])  # as `--agent mod:Name`
    assert recipe.config.top == 4 and recipe.kind == recipe.source == "user_kinds:reader_agent"
    assert recipe.needs_backend and recipe.to_dict()["answerer"]["template"] == "memory_r1_answer"


def test_an_unannotated_llm_call_parameter_is_an_llm_call(user_module):
    from memgym.agents import LLMCall

    call = load_agent({"kind": "user_kinds:unannotated", "answerer": {"temperature": 0.0}},
                      reader_backend())
    assert isinstance(call, LLMCall) and call.temperature == 0.0
    assert call.template == "memory_r1_answer"


def test_a_users_kind_is_validated_like_a_shipped_one(user_module):
    with pytest.raises(ConfigError, match="topp: unknown key.*Did you mean 'top'"):
        load_recipe({"kind": "user_kinds:reader_agent", "topp": 5})
    with pytest.raises(ConfigError, match="expected int"):
        load_recipe({"kind": "user_kinds:reader_agent", "top": "many"})
    with pytest.raises(ConfigError, match="no attribute 'Nope'"):
        load_recipe({"kind": "user_kinds:Nope"})
    with pytest.raises(ConfigError, match="no module 'not_a_module'"):
        load_recipe({"kind": "not_a_module:Agent"})


def test_a_users_kind_without_llm_calls_runs_without_a_backend(user_module, monkeypatch, capsys):
    from memgym.cli import main

    monkeypatch.chdir(user_module)
    (user_module / "note.yaml").write_text("kind: user_kinds:NoteTaker\nanswer: Paris\n")
    rc = main(["eval", "--env", "MemAgent-Synthetic-v0", "--agent", "note.yaml", "--episodes",
               "1", "--out", "runs/note", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert "user_kinds:NoteTaker" in capsys.readouterr().err


def test_register_agent_kind_takes_a_class(user_module):
    from user_kinds import NoteTaker

    register_agent_kind("test_note_taker", NoteTaker)
    try:
        agent = load_agent({"kind": "test_note_taker", "answer": "Rome"}, None)
        assert isinstance(agent, NoteTaker) and agent.answer == "Rome"
    finally:
        del AGENT_KINDS["test_note_taker"]


def test_a_call_with_its_own_backend_must_be_frozen():
    with pytest.raises(ConfigError, match="extractor: a call with its own backend is frozen"):
        load_agent({"kind": "memory_r1", "extractor": {
            "trainable": True, "backend": {"backend": "scripted", "model": "os.path:join"}}},
            reader_backend())
    agent = load_agent({"kind": "memory_r1", "extractor": {
        "backend": {"backend": "scripted", "model": "os.path:join"}}}, reader_backend())
    assert agent.extractor.backend is not agent.manager.backend


def test_a_template_by_import_path(user_module):
    (user_module / "my_prompts.py").write_text(
        "ANSWER = 'Memories: {memories}\\nQuestion: {question}\\nAnswer:'\n")
    agent = load_agent({"kind": "rag_turns", "answerer": {"template": "my_prompts:ANSWER"}},
                       reader_backend())
    assert agent.answerer.template.fields == ("memories", "question")
    with pytest.raises(ConfigError, match="slots"):
        load_agent({"kind": "memory_r1", "extractor": {"template": "my_prompts:ANSWER"}},
                   reader_backend())


def test_recipes_import_no_cli_module():
    code = ("import sys, memgym.agents.recipe, memgym.trainer.frozen_reader; "
            "print(sorted(m for m in sys.modules if m.startswith('memgym.eval')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"  # the backend-from-spec path no longer runs through eval/cli


def test_a_resolved_recipe_of_an_older_run_loads_with_the_same_meaning():
    # before LLMCall had defaults on the class, run.json wrote unset call keys as null
    old = {"kind": "memory_r1", "manager": {"template": None, "max_new_tokens": None,
                                            "temperature": 0.0, "top_p": 1.0, "top_k": 0,
                                            "chat": True, "trainable": None, "backend": None}}
    manager = load_recipe(old).config.manager
    assert (manager.template, manager.max_new_tokens, manager.temperature, manager.trainable) \
        == ("dialogue_memory_manager", 512, 0.0, True)
