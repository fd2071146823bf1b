"""Checkers shipped with memgym, so env authors, the test suite and the leaderboard run the same checks.

    >>> from memgym.testing import check_memgym_env
    >>> check_memgym_env(gym.make("MemAgent-HotpotQA-v0"))
"""

from memgym.testing.env_checker import NASTY_ACTIONS, check_memgym_env

__all__ = ["NASTY_ACTIONS", "check_memgym_env"]
