"""Agent recipes: every shipped recipe loads with its documented defaults; overrides apply; bad
keys, kinds, types and templates are ConfigErrors naming the file, the key and the nearest name."""

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
