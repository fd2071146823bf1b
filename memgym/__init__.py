"""memgym: Gymnasium environments for LLM-agent memory, composable memory agents, and GRPO.

`import memgym` registers every environment id with Gymnasium:

    >>> import gymnasium as gym, memgym
    >>> env = gym.make("MemAgent-HotpotQA-v0")
"""

# First: libgomp reads its wait policy when torch is first imported (see memgym._omp).
from memgym._omp import prefer_passive_omp_wait

prefer_passive_omp_wait()

from memgym.envs.registration import register_envs
from memgym.errors import ConfigError, DataError, MemgymError, UnknownNameError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "MemgymError", "UnknownNameError", "__version__"]

register_envs()
