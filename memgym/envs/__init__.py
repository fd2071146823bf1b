"""Memory environments: the long-context env, the dialogue env, spaces, wrappers and registration
(the PettingZoo view is `memgym.envs.multi_agent`, imported on demand: pettingzoo is optional)."""

from memgym.envs.dialogue import DialogueMemoryEnv, parse_citations, render_memories
from memgym.envs.long_context import DEFAULT_REWARD_WEIGHTS, ChunkStream, LongContextMemoryEnv
from memgym.envs.registration import ENV_DESCRIPTIONS, register_envs
from memgym.envs.spaces import UnicodeText
from memgym.envs.wrappers import VectorRewardWrapper
from memgym.rewards.rubric import EPISODE_RESULT_KEY

__all__ = [
           "DEFAULT_REWARD_WEIGHTS",
           "EPISODE_RESULT_KEY",
           "ENV_DESCRIPTIONS",
           "ChunkStream",
           "DialogueMemoryEnv",
           "LongContextMemoryEnv",
           "UnicodeText",
           "VectorRewardWrapper",
           "parse_citations",
           "register_envs",
           "render_memories",
]
