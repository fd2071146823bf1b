"""Memory agents composed from small components, their recipes, and the episode runner.

    >>> from memgym.agents import load_agent, run_episode
    >>> agent = load_agent("agents/memagent.yaml", backend)
    >>> episode = await run_episode(gym.make("MemAgent-HotpotQA-v0"), agent, seed=0, task_id=0)

Components: prompt templates (`prompts`), completion parsers (`parsing`), the recorded LLM call
(`calls.call_llm`) and its recipe config (`LLMCall`, bound into an `LLMComponent`), passage
splitting / truncation / BM25 ranking (`retrieval`). Agents: MemAgent and MEM1-style
(`overwrite`), full-context, BM25 and oracle baselines (`baselines`), Memory-R1 (`memory_r1`),
the dialogue baselines, RMM, plain-function policies (`policy`). Your own agent kind: a class or
factory named in a recipe as `kind: package.module:Name`, or `register_agent_kind` (see
agents/README.md, "Compose your own memory agent"). Nothing here imports torch.
"""

from memgym.agents.base import Agent, EpisodeContext, Turn
from memgym.agents.baselines import ContextAnswerer, FullContextAgent, OracleAgent, RetrievalAgent
from memgym.agents.calls import LLMCall, LLMComponent, call_llm
from memgym.agents.episode import Episode, EpisodeJob, run_episode, run_episodes
from memgym.agents.overwrite import OverwriteMemoryAgent, make_mem1, make_memagent
from memgym.agents.policy import ScriptedPolicyAgent
from memgym.agents.prompts import TEMPLATES, PromptTemplate, get_template
from memgym.agents.recipe import (
    AGENT_KINDS,
    AgentKind,
    AgentRecipe,
    build_agent,
    llm_calls,
    load_agent,
    load_recipe,
    register_agent_kind,
)

__all__ = [
    "AGENT_KINDS",
    "TEMPLATES",
    "Agent",
    "AgentKind",
    "AgentRecipe",
    "ContextAnswerer",
    "Episode",
    "EpisodeContext",
    "EpisodeJob",
    "FullContextAgent",
    "LLMCall",
    "LLMComponent",
    "OracleAgent",
    "OverwriteMemoryAgent",
    "PromptTemplate",
    "RetrievalAgent",
    "ScriptedPolicyAgent",
    "Turn",
    "build_agent",
    "call_llm",
    "get_template",
    "llm_calls",
    "load_agent",
    "load_recipe",
    "make_mem1",
    "make_memagent",
    "register_agent_kind",
    "run_episode",
    "run_episodes",
]
