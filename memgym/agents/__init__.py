"""Memory agents composed from small components, their recipes, and the episode runner.

    >>> from memgym.agents import load_agent, run_episode
    >>> agent = load_agent("agents/memagent.yaml", backend)
    >>> episode = await run_episode(gym.make("MemAgent-HotpotQA-v0"), agent, seed=0, task_id=0)

Components: prompt templates (`prompts`), completion parsers (`parsing`), the recorded LLM call
(`calls.call_llm`), passage splitting / truncation / BM25 ranking (`retrieval`). Agents: MemAgent
and MEM1-style (`overwrite`), full-context, BM25 and oracle baselines (`baselines`), plain-function
policies (`policy`). Nothing here imports torch.
"""

from memgym.agents.base import Agent, EpisodeContext, Turn
from memgym.agents.baselines import ContextAnswerer, FullContextAgent, OracleAgent, RetrievalAgent
from memgym.agents.calls import call_llm
from memgym.agents.episode import Episode, EpisodeJob, run_episode, run_episodes
from memgym.agents.overwrite import OverwriteMemoryAgent, make_mem1, make_memagent
from memgym.agents.policy import ScriptedPolicyAgent
from memgym.agents.prompts import TEMPLATES, PromptTemplate, get_template
from memgym.agents.recipe import AGENT_KINDS, AgentRecipe, build_agent, load_agent, load_recipe

__all__ = [
    "AGENT_KINDS",
    "TEMPLATES",
    "Agent",
    "AgentRecipe",
    "ContextAnswerer",
    "Episode",
    "EpisodeContext",
    "EpisodeJob",
    "FullContextAgent",
    "OracleAgent",
    "OverwriteMemoryAgent",
    "PromptTemplate",
    "RetrievalAgent",
    "ScriptedPolicyAgent",
    "Turn",
    "build_agent",
    "call_llm",
    "get_template",
    "load_agent",
    "load_recipe",
    "make_mem1",
    "make_memagent",
    "run_episode",
    "run_episodes",
]
