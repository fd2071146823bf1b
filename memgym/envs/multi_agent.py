"""PettingZoo views of the dialogue memory env: a `manager` that edits the bank, an `answerer`.

    >>> from memgym.envs.multi_agent import memory_bank_aec_env, memory_bank_parallel_env
    >>> env = memory_bank_aec_env("MemoryBank-Synthetic-v0")
    >>> env.reset(seed=0)
    >>> for agent in env.agent_iter():
    ...     obs, reward, terminated, truncated, info = env.last()
    ...     env.step(None if terminated or truncated else my_policy(agent, obs))

Both views wrap one `DialogueMemoryEnv` (the core): the core decides whose turn it is. At a
write step the manager acts (memory operations); at a question step the answerer acts (the
answer, optionally with citations). Both agents observe the core's current observation (the
same dict, in the core's `observation_space`); the idle agent's action is ignored. Rewards are
per agent and scalar: the acting agent gets the core's step reward, the other 0; each agent's
`infos[agent]["reward_components"]` holds the components its own last step scored (empty when
it did not act), and the acting agent's info is the core's whole step info. At termination
both agents' infos hold `episode_result`, the core's episode result (reward and components).
With a frozen reader (`reader=`) the manager's reward is the reader's score after its edit
(Memory-R1's manager reward); the answerer's is the answer's F1 by default.

Both agents terminate together, after the last question. `pettingzoo.test.api_test`,
`parallel_api_test`, `seed_test` and `parallel_seed_test` pass (tests/envs/test_multi_agent.py).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import wrappers

from memgym.envs.dialogue import DialogueMemoryEnv
from memgym.errors import ConfigError
from memgym.rewards.rubric import EPISODE_RESULT_KEY

__all__ = [
    "ANSWERER",
    "MANAGER",
    "MemoryBankAECEnv",
    "MemoryBankParallelEnv",
    "memory_bank_aec_env",
    "memory_bank_parallel_env",
]

MANAGER, ANSWERER = "manager", "answerer"
AGENTS = (MANAGER, ANSWERER)


def _core(env: str | DialogueMemoryEnv, env_kwargs: dict[str, Any]) -> DialogueMemoryEnv:
    """The DialogueMemoryEnv to wrap: given, or built from a registered id."""
    if isinstance(env, str):
        env = gym.make(env, **env_kwargs).unwrapped
    elif env_kwargs:
        raise ConfigError(f"env kwargs {sorted(env_kwargs)} are for an env id; a built env "
                          "takes its arguments at construction")
    if not isinstance(env, DialogueMemoryEnv):
        raise ConfigError(f"the multi-agent view wraps a DialogueMemoryEnv (ids MemoryR1-*, "
                          f"RMM-*, MemoryBank-*), got {type(env).__name__}")
    return env


def _actor(core: DialogueMemoryEnv) -> str:
    return MANAGER if core._phase == "write" else ANSWERER


def _split_step(core: DialogueMemoryEnv, acting: str, reward: float, info: dict[str, Any]
                ) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Per-agent rewards and infos of one core step taken by `acting`."""
    rewards = {a: (float(reward) if a == acting else 0.0) for a in AGENTS}
    idle: dict[str, Any] = {"reward_components": {}, "reward_weights": dict(core.rubric.weights)}
    if EPISODE_RESULT_KEY in info:  # both agents see the episode's result at termination
        idle[EPISODE_RESULT_KEY] = info[EPISODE_RESULT_KEY]
    infos = {a: (info if a == acting else idle) for a in AGENTS}
    return rewards, infos


class MemoryBankAECEnv(AECEnv):
    """The AEC view: the agent selected is whoever the core's phase calls (see module doc).

    Args:
        core: the DialogueMemoryEnv it plays.
        render_mode: None or "ansi" (the core's rendering).
    """

    metadata = {"name": "memory_bank_aec_v0", "render_modes": ["ansi"],
                "is_parallelizable": True}

    def __init__(self, core: DialogueMemoryEnv, render_mode: str | None = None):
        super().__init__()
        self.core = core
        self.core.render_mode = render_mode
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []

    def observation_space(self, agent: str) -> gym.spaces.Space:
        """The core's observation space (the same for both agents)."""
        return self.core.observation_space

    def action_space(self, agent: str) -> gym.spaces.Space:
        """Unicode text: memory operations (manager) or the answer (answerer)."""
        return self.core.action_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        """Reset the core (options as its reset: task_id, questions)."""
        self._obs, info = self.core.reset(seed=seed, options=options)
        self.agents = list(AGENTS)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {a: dict(info) for a in self.agents}
        if self.core._phase == "done":  # nothing to stream and nothing to ask
            self.terminations = dict.fromkeys(self.agents, True)
        self.agent_selection = _actor(self.core)

    def observe(self, agent: str) -> dict[str, str]:
        """The core's current observation."""
        return self._obs

    def step(self, action: str | None) -> None:
        """The selected agent's action goes to the core; a dead agent's step removes it."""
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0.0
        self._obs, reward, terminated, truncated, info = self.core.step(action)
        self.rewards, self.infos = _split_step(self.core, agent, reward, info)
        if terminated or truncated:
            self.terminations = dict.fromkeys(self.agents, bool(terminated))
            self.truncations = dict.fromkeys(self.agents, bool(truncated))
        else:
            self.agent_selection = _actor(self.core)
        self._accumulate_rewards()

    def render(self) -> str | None:
        """The core's ansi rendering."""
        return self.core.render()

    def close(self) -> None:
        """Close the core."""
        self.core.close()


class MemoryBankParallelEnv(ParallelEnv):
    """The parallel view: both agents submit an action every step; the core's phase picks whose
    is applied (the manager's at a write step, the answerer's at a question) and the other's is
    ignored.

    Args:
        core: the DialogueMemoryEnv it plays.
        render_mode: None or "ansi".
    """

    metadata = {"name": "memory_bank_parallel_v0", "render_modes": ["ansi"]}

    def __init__(self, core: DialogueMemoryEnv, render_mode: str | None = None):
        self.core = core
        self.core.render_mode = render_mode
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []

    def observation_space(self, agent: str) -> gym.spaces.Space:
        """The core's observation space (the same for both agents)."""
        return self.core.observation_space

    def action_space(self, agent: str) -> gym.spaces.Space:
        """Unicode text: memory operations (manager) or the answer (answerer)."""
        return self.core.action_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        """Reset the core; both agents observe its first observation."""
        obs, info = self.core.reset(seed=seed, options=options)
        self.agents = [] if self.core._phase == "done" else list(AGENTS)
        return ({a: obs for a in self.agents}, {a: dict(info) for a in self.agents})

    def step(self, actions: dict[str, str]):
        """Apply the acting agent's action; return per-agent obs, rewards, ends and infos."""
        acting = _actor(self.core)
        if acting not in actions:
            raise ConfigError(f"the {acting} acts at this {self.core._phase} step; "
                              f"actions has only {sorted(actions)}")
        obs, reward, terminated, truncated, info = self.core.step(actions[acting])
        rewards, infos = _split_step(self.core, acting, reward, info)
        agents = self.agents
        out = ({a: obs for a in agents}, {a: rewards[a] for a in agents},
               {a: bool(terminated) for a in agents}, {a: bool(truncated) for a in agents},
               {a: infos[a] for a in agents})
        if terminated or truncated:
            self.agents = []
        return out

    def render(self) -> str | None:
        """The core's ansi rendering."""
        return self.core.render()

    def close(self) -> None:
        """Close the core."""
        self.core.close()


def memory_bank_aec_env(env: str | DialogueMemoryEnv = "MemoryBank-Synthetic-v0", *,
                        render_mode: str | None = None, **env_kwargs: Any) -> AECEnv:
    """The AEC env (order-enforced, as PettingZoo's own envs ship) over a dialogue env.

    Args:
        env: a registered dialogue env id (built with `env_kwargs`) or a DialogueMemoryEnv.
        render_mode: None or "ansi".
    """
    return wrappers.OrderEnforcingWrapper(MemoryBankAECEnv(_core(env, env_kwargs), render_mode))


def memory_bank_parallel_env(env: str | DialogueMemoryEnv = "MemoryBank-Synthetic-v0", *,
                             render_mode: str | None = None, **env_kwargs: Any
                             ) -> MemoryBankParallelEnv:
    """The parallel env over a dialogue env (arguments as `memory_bank_aec_env`)."""
    return MemoryBankParallelEnv(_core(env, env_kwargs), render_mode)
