"""memgym: Gymnasium environments for LLM-agent memory, composable memory agents, and GRPO.

`import memgym` registers every environment id with Gymnasium:

    >>> import gymnasium as gym, memgym
    >>> env = gym.make("MemAgent-HotpotQA-v0")
"""

from memgym.envs.registration import register_envs
from memgym.errors import ConfigError, DataError, MemgymError, UnknownNameError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "MemgymError", "UnknownNameError", "__version__"]

register_envs()
