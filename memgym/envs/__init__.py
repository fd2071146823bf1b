"""Memory environments: the long-context env, spaces, wrappers and registration."""

from memgym.envs.long_context import DEFAULT_REWARD_WEIGHTS, ChunkStream, LongContextMemoryEnv
from memgym.envs.registration import ENV_DESCRIPTIONS, register_envs
from memgym.envs.spaces import UnicodeText
from memgym.envs.wrappers import VectorRewardWrapper

__all__ = ["ChunkStream", "DEFAULT_REWARD_WEIGHTS", "ENV_DESCRIPTIONS", "LongContextMemoryEnv",
           "UnicodeText", "VectorRewardWrapper", "register_envs"]
