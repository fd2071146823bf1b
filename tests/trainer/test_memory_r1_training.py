"""Memory-R1's two GRPO stages through memgym's trainer: per-step credit, the frozen reader
injected from the recipe, and one CPU step of train/memory_r1_stage{1,2}.yaml each.

The trained model is memgym's random tiny model; every other LLM call (the extractor, the frozen
manager or answerer, the frozen reader) goes to a scripted backend named by import path.
"""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memgym.config import load_yaml
from memgym.rewards.rubric import EPISODE_RESULT_KEY
from memgym.trainer.advantages import STD_EPS, flat_step_groups, step_reward_credit
from memgym.trainer.config import load_config
from memgym.trainer.frozen_reader import FrozenReader, build_frozen_reader
from memgym.trainer.grpo import GRPOTrainer

ROOT = Path(__file__).parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "locomo_mini.json"
STAGE1 = ROOT / "train" / "memory_r1_stage1.yaml"
STAGE2 = ROOT / "train" / "memory_r1_stage2.yaml"
SCRIPTED = {"backend": "scripted", "model": f"{__name__}:frozen_llm"}


# -- scripted LLMs (import paths in the recipes below) ------------------------------------------
def _prompt(request) -> str:
    return request.messages[-1]["content"] if request.messages else request.prompt


def frozen_llm(request) -> str:
    """The frozen components: the turn is the fact, ADD every fact, answer 'unknown'."""
    prompt = _prompt(request)
    if "Personal Information Organizer" in prompt:
        message = prompt.rsplit("Message: ", 1)[1].rsplit("\nOutput:", 1)[0]
        return json.dumps({"facts": [message]})
    if "smart memory manager" in prompt:
        facts = json.loads(prompt.rsplit("```", 2)[-2])
        return json.dumps({"memory": [{"id": "new", "text": f, "event": "ADD"} for f in facts]})
    return "Selected memories: none\n\n**Answer:** unknown"


def _golds() -> dict[str, str]:
    import gymnasium as gym

    from memgym.data.locomo import load_locomo

    conversations = list(load_locomo(str(FIXTURE)))
    conversations += gym.make("MemoryBank-Synthetic-v0", num_conversations=2).unwrapped.conversations
    return {q.question: q.answers[0] for c in conversations for q in c.questions}


GOLDS = _golds()


_READS = itertools.count()


def noisy_reader(request) -> str:
    """A frozen reader right on every other read (a test double). A read's seed is the same in
    every episode of a group (same reset seed, step and question), so a seeded double would
    score the G episodes alike unless the manager's memories differ, which the tiny manager's
    few tokens never make them; alternating keeps the group's reader scores apart."""
    question = _prompt(request).rsplit("Question: ", 1)[-1].strip()
    answer = GOLDS.get(question, "?") if next(_READS) % 2 else "the moon"
    return f"Selected memories: none\n\n**Answer:** {answer}"


def _recipe(path: Path, tmp_path: Path, env: str, **over) -> dict:
    recipe = load_yaml(path)
    recipe["env_id"] = env
    recipe["env_kwargs"] = ({**recipe["env_kwargs"], "data_path": str(FIXTURE)}  # conv-26
                            if env == "MemoryR1-LoCoMo-v0" else
                            {"num_conversations": 2})
    for role in ("extractor", "manager", "answerer"):
        part = recipe["agent"][role]
        part.pop("backend", None)
        if not part["trainable"]:
            part["backend"] = dict(SCRIPTED)
        else:
            part["max_new_tokens"] = 6
    if "frozen_reader" in recipe:
        recipe["frozen_reader"] = {**recipe["frozen_reader"], "backend": "scripted",
                                   "model": f"{__name__}:noisy_reader"}
    recipe.update(model="tiny", max_steps=1, num_generations=4, tasks_per_step=1,
                  max_completion_length=6, learning_rate=5e-3, save_steps=0,
                  output_dir=str(tmp_path / "run"), seed=3, **over)
    return recipe


def _train_one_step(recipe: dict) -> tuple[GRPOTrainer, dict, list, list]:
    trainer = GRPOTrainer(load_config(recipe))
    before = [p.detach().clone() for p in trainer.params]
    seen = []
    original = trainer._rows

    def spy(episodes, group_ids=None):
        seen.extend(episodes)
        return original(episodes, group_ids)

    trainer._rows = spy
    try:
        rows = trainer.train()
    finally:
        trainer.close()
    return trainer, rows[-1], before, seen


def _changed(trainer: GRPOTrainer, before: list) -> bool:
    return any(not torch.equal(a, b.detach()) for a, b in zip(before, trainer.params))


# -- per-step credit ------------------------------------------------------------------------------
def test_step_reward_credit_matches_a_hand_computed_case():
    # one group of G=2 episodes, 3 env steps; Turns at steps 0, 1 (trainable) and 2 (frozen)
    step_rewards = [[1.0, 0.0, 5.0], [0.0, 0.0, 9.0]]
    turn_steps = [[0, 1, 2], [0, 1, 2]]
    trainable = [[True, True, False], [True, True, False]]
    step = step_reward_credit(step_rewards, turn_steps, trainable, 2, baseline="step",
                              normalize_per_episode=False)
    # step 0: rewards (1, 0): mean 0.5, Bessel std 0.7071 -> +-0.5/0.7071; step 1: all equal -> 0
    a = 0.5 / (2 ** 0.5 / 2 + STD_EPS)
    assert step.advantages == pytest.approx([a, 0.0, -a, 0.0])
    assert step.turn_index == [0, 1, 0, 1] and step.episode_index == [0, 0, 1, 1]
    assert step.weights == [1.0] * 4
    pooled = step_reward_credit(step_rewards, turn_steps, trainable, 2, baseline="group",
                                scale_rewards="none")
    # pooled over the 4 credited (episode, step) values (1, 0, 0, 0): mean 0.25; step 2 unused
    assert pooled.advantages == pytest.approx([0.75, -0.25, -0.25, -0.25])
    assert pooled.weights == [0.5] * 4  # 1/T, T = 2 trainable Turns per episode
    # the frozen Turns' step rewards never count: the group is flat on the credited steps
    assert flat_step_groups(step_rewards, turn_steps, trainable, 2).tolist() == [False]
    assert flat_step_groups([[0.0, 5.0], [0.0, 9.0]], [[0, 1]] * 2,
                            [[True, False]] * 2, 2).tolist() == [True]


def test_flat_step_groups_agrees_with_the_step_baseline():
    # Every sibling scores 1 at step 1 and 0 at step 0: the rewards differ across steps but not
    # across the G samples of any one step, so the step baseline teaches nothing (the quickstart
    # of the Memory-R1 manager once trained on such groups with loss 0 at every step).
    rewards, steps, trainable = [[0.0, 1.0], [0.0, 1.0]], [[0, 1]] * 2, [[True, True]] * 2
    assert flat_step_groups(rewards, steps, trainable, 2).tolist() == [True]
    assert flat_step_groups(rewards, steps, trainable, 2, baseline="group").tolist() == [False]
    assert step_reward_credit(rewards, steps, trainable, 2).advantages == [0.0] * 4


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.sampled_from(["step", "group"]), st.data())
def test_a_group_is_flat_exactly_when_all_its_step_advantages_are_zero(n_groups, g, baseline,
                                                                       data):
    n_steps = 3
    rewards = [[float(data.draw(st.integers(0, 1))) for _ in range(n_steps)]
               for _ in range(n_groups * g)]
    trainable = [[data.draw(st.booleans()) for _ in range(n_steps)] for _ in rewards]
    steps = [list(range(n_steps))] * len(rewards)
    flat = flat_step_groups(rewards, steps, trainable, g, baseline=baseline).tolist()
    credit = step_reward_credit(rewards, steps, trainable, g, baseline=baseline,
                                scale_rewards="none")
    for k in range(n_groups):
        adv = [a for a, e in zip(credit.advantages, credit.episode_index) if e // g == k]
        assert flat[k] == all(abs(a) < 1e-9 for a in adv)


def test_step_reward_credit_refuses_a_turn_past_the_episode():
    with pytest.raises(ValueError, match="step 3"):
        step_reward_credit([[1.0], [0.0]], [[3], [0]], [[True], [True]], 2)


def test_the_config_refuses_step_credit_with_normalize_then_sum(tiny_recipe):
    from memgym.errors import ConfigError

    with pytest.raises(ConfigError, match="step_reward"):
        load_config({**tiny_recipe, "credit_assignment": "step_reward",
                     "multi_objective_aggregation": "normalize_then_sum"})


# -- the frozen reader ------------------------------------------------------------------------------
def test_the_frozen_reader_plays_the_answer_step_of_its_recipe():
    reader = build_frozen_reader({"agent": "agents/memory_r1.yaml", **SCRIPTED})
    assert isinstance(reader, FrozenReader)
    from memgym.memory.bank import MemoryBank

    bank = MemoryBank()
    bank.apply_text(json.dumps({"memory": [{"event": "ADD", "text": "Ana lives in Lisbon"}]}),
                    speaker="Ana")
    assert reader("Where does Ana live?", list(bank)) == "unknown"
    assert reader.reads == 1


class _SeedRecorder:
    """A dialogue answer agent that records each read's sampling seed and thread."""

    def __init__(self):
        self.seeds, self.threads = [], set()

    async def act(self, observation, ctx):
        self.seeds.append((observation["question"], ctx.sampling_seed))
        self.threads.add(threading.current_thread().name)
        return "unknown"


def _play_with_reader(reader, seed):
    import gymnasium as gym

    from memgym.agents.episode import run_episode, run_sync

    class WriteNothing:
        async def act(self, obs, ctx):
            return "[]" if obs["phase"] == "write" else "unknown"

    env = gym.make("MemoryBank-Synthetic-v0", reader=reader, reader_scope="seen", questions=3)
    run_sync(run_episode(env, WriteNothing(), seed=seed, task_id=0))


def test_a_reads_seed_comes_from_episode_step_and_question_not_from_how_many_reads_came_first():
    agent = _SeedRecorder()
    reader = FrozenReader(agent, seed=5)
    _play_with_reader(reader, seed=0)
    first = list(agent.seeds)
    reader("an unrelated read in between", [])  # another env's read, scheduled first
    agent.seeds.clear()
    _play_with_reader(reader, seed=0)
    assert first and agent.seeds == first
    agent.seeds.clear()
    _play_with_reader(reader, seed=1)
    assert [s for _, s in agent.seeds] != [s for _, s in first]
    reader.close()


def test_reads_run_on_the_readers_own_loop_while_the_env_steps_off_the_rollouts_loop():
    agent = _SeedRecorder()
    reader = FrozenReader(agent)
    _play_with_reader(reader, seed=0)
    assert agent.threads == {"memgym-frozen-reader"}
    reader.close()


def test_a_bad_frozen_reader_section_names_the_key():
    from memgym.errors import ConfigError

    with pytest.raises(ConfigError, match="frozen_reader.modle"):
        build_frozen_reader({"modle": "x"})


# -- stage 1: the manager, rewarded by the frozen reader -------------------------------------------
@pytest.mark.parametrize("env", [pytest.param("MemoryBank-Synthetic-v0", marks=pytest.mark.slow),
                                 "MemoryR1-LoCoMo-v0"])
def test_stage1_trains_the_manager_on_the_frozen_readers_score(tmp_path, env):
    recipe = _recipe(STAGE1, tmp_path, env)
    trainer, metrics, before, episodes = _train_one_step(recipe)
    # the env got the recipe's reader, and the write steps' reward is its score
    assert isinstance(trainer.env_kwargs["reader"], FrozenReader)
    assert trainer.env_kwargs["reader"].reads > 0
    assert any(c.get("reader", 0) > 0 for e in episodes for c in e.step_components)
    assert metrics["step_rewards/reader/mean"] > 0
    # only the manager's Turns are trained; the frozen answerer and extractor are not
    comps = {t.component for e in episodes for t in e.turns if t.trainable}
    assert comps == {"manager"}
    assert any(t.component == "answerer" and not t.trainable for t in episodes[0].turns)
    assert metrics["rows"] > 0 and _changed(trainer, before)


# -- stage 2: the answerer, rewarded by its own EM ---------------------------------------------------
def biased_policy():
    """The tiny model with an output bias toward ' cat', '2', ' ' and the end: its answers
    now and then hold a gold word ("cat" of the fixture, "22" of the synthetic dates)."""
    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok, seed=0)
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        for token, bias in ((" cat", 7.0), ("2", 8.0), (" ", 7.0)):
            head.bias[tok.encode(token)[0]] = bias
        head.bias[tok.eos_token_id] = 5.0
    model.config.tie_word_embeddings = False
    model.lm_head = head
    return model, tok


@pytest.mark.parametrize("env", [pytest.param("MemoryBank-Synthetic-v0", marks=pytest.mark.slow),
                                 "MemoryR1-LoCoMo-v0"])
def test_stage2_trains_the_answerer_with_the_manager_frozen(tmp_path, env):
    recipe = _recipe(STAGE2, tmp_path, env, reward_weights={"em": 1.0, "f1": 1.0})
    if env == "MemoryBank-Synthetic-v0":
        # the biased tiny policy hits a gold word ("22" of "22 May 2023") only by chance, and
        # its samples depend on the prompt's text: with Memory-R1's Figure 11 answer prompt,
        # seed 3 gives every group equal rewards; seed 5 gives a group that differs
        recipe["seed"] = 5
    model, tok = biased_policy()
    trainer = GRPOTrainer(load_config(recipe), policy=model, tokenizer=tok)
    before = [p.detach().clone() for p in trainer.params]
    seen = []
    original = trainer._rows
    trainer._rows = lambda eps, group_ids=None: (seen.extend(eps), original(eps, group_ids))[1]
    try:
        metrics = trainer.train()[-1]
    finally:
        trainer.close()
    assert {t.component for e in seen for t in e.turns if t.trainable} == {"answerer"}
    managed = [t for e in seen for t in e.turns if t.component == "manager"]
    assert managed and not any(t.trainable for t in managed)
    assert seen[0].info[EPISODE_RESULT_KEY]["bank_size"] > 0  # the frozen manager wrote the bank
    assert "reader" not in seen[0].step_components[0]  # no reader in stage 2
    assert metrics["rows"] > 0 and _changed(trainer, before)
