"""RMM: the reranker's sampling and log-probabilities, the parsers, full episodes."""

import math
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import memgym.envs  # noqa: F401 - registers the envs
from memgym.agents.episode import run_episode, run_sync
from memgym.agents.recipe import load_agent
from memgym.agents.reranker import MemoryReranker, RerankSample
from memgym.agents.rmm import parse_answer_citations, parse_summaries, scripted_rmm_llm
from memgym.cli import main
from memgym.errors import ConfigError
from memgym.llm.scripted import ScriptedBackend
from memgym.memory.bank import MemoryEntry
from memgym.memory.view import shown_memories
from memgym.rewards.rubric import EPISODE_RESULT_KEY

ROOT = Path(__file__).parents[2]


def _hand_case(estimator):
    r = MemoryReranker(2, top_m=2, tau=0.5, estimator=estimator)
    q = torch.tensor([1.0, 0.0])
    m = torch.tensor([[1.0, 0.0], [0.5, 0.0], [0.0, 1.0]])  # scores 1, 0.5, 0 -> logits 2, 1, 0
    return r, RerankSample(q, m, (1, 0), torch.zeros(2))


def test_plackett_luce_log_prob_of_a_sampled_top_m_by_hand():
    r, s = _hand_case("plackett_luce")
    first = 1 - math.log(math.exp(2) + math.exp(1) + 1)      # pick 1 of {0, 1, 2}
    second = 2 - math.log(math.exp(2) + 1)                    # then 0 of {0, 2}
    assert torch.allclose(r.log_probs(s), torch.tensor([first, second]), atol=1e-6)


def test_rmm_estimator_is_each_picks_softmax_over_all_candidates():
    r, s = _hand_case("rmm")
    z = math.log(math.exp(2) + math.exp(1) + 1)
    assert torch.allclose(r.log_probs(s), torch.tensor([1 - z, 2 - z]), atol=1e-6)


def test_untrained_reranker_ranks_as_the_encoder_and_sampling_is_seeded():
    r = MemoryReranker(4, top_m=3)
    gen = torch.Generator().manual_seed(0)
    q, m = torch.randn(4, generator=gen), torch.randn(10, 4, generator=gen)
    greedy = r.sample(q, m, greedy=True)
    assert list(greedy.chosen) == torch.topk(m @ q, 3).indices.tolist()
    a = r.sample(q, m, generator=torch.Generator().manual_seed(5))
    b = r.sample(q, m, generator=torch.Generator().manual_seed(5))
    assert a.chosen == b.chosen and len(set(a.chosen)) == 3
    assert torch.allclose(a.logp, r.log_probs(a))
    with pytest.raises(ConfigError, match="query must be"):
        r.sample(torch.randn(3), m)


def test_parse_summaries_reads_turn_ids_no_trait_and_junk():
    text = "- Sami works as a chemist [D1:3, D1:5]\n2. Sami likes tea\nNO_TRAIT\n\n"
    assert parse_summaries(text) == [("Sami works as a chemist", ("D1:3", "D1:5")),
                                     ("Sami likes tea", ())]
    assert parse_summaries("NO_TRAIT") == [] and parse_summaries("") == []
    assert len(parse_summaries("x\n" * 50, max_summaries=3)) == 3


def test_parse_answer_citations_last_tag_range_and_no_cite():
    assert parse_answer_citations("Paris\n[0, 2]", 3) == ("Paris", (0, 2))
    assert parse_answer_citations("Paris [1] then [7, 0]", 3) == ("Paris [1] then", (0,))
    assert parse_answer_citations("no idea [NO_CITE]", 3) == ("no idea", ())
    assert parse_answer_citations("Paris", 3) == ("Paris", None)
    assert parse_answer_citations("[x, y]", 3) == ("[x, y]", None)


def _agent():
    return load_agent(str(ROOT / "agents" / "rmm.yaml"),
                      ScriptedBackend(scripted_rmm_llm), overrides=["encoder=hash"])


def test_rmm_episode_add_and_merge_reach_the_bank_and_citations_the_env():
    env = gym.make("MemoryBank-Synthetic-v0", protocol="rmm", num_conversations=1)
    episode = run_sync(run_episode(env, _agent(), seed=0, task_id=0, sampling_seed=1))
    summary = episode.info[EPISODE_RESULT_KEY]
    assert summary["op_counts"]["ADD/applied"] > 0 and summary["op_counts"]["MERGE/applied"] > 0
    assert summary["bank_size"] == summary["op_counts"]["ADD/applied"]
    answers = [a for a in episode.actions if "[CITE:" in a or "[NO_CITE]" in a]
    assert len(answers) == summary["num_questions"] > 0
    assert summary["reward_components"]["citation"] == 1.0  # every cited id was shown
    assert {t.component for t in episode.turns} == {"rmm_extract", "rmm_update", "rmm_answer"}


def test_rmm_agent_refuses_the_memory_r1_protocol():
    env = gym.make("MemoryBank-Synthetic-v0", num_conversations=1)
    with pytest.raises(ConfigError, match="protocol=rmm"):
        run_sync(run_episode(env, _agent(), seed=0, task_id=0))


@pytest.mark.slow
def test_memgym_eval_runs_agents_rmm_yaml_with_the_scripted_backend(tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "--env", "MemoryBank-Synthetic-v0", "--env-kwargs", "protocol=rmm",
                 "num_conversations=1", "--agent", str(ROOT / "agents" / "rmm.yaml"),
                 "--agent-overrides", "encoder=hash", "--backend", "scripted", "--model",
                 "memgym.agents.rmm:scripted_rmm_llm", "--out", str(out), "--no-progress"]) == 0
    predictions = (out / "predictions.jsonl").read_text()
    assert "[CITE:" in predictions and '"rmm_update"' in predictions


def _merge_everything_llm(request):
    """Two summaries about Ana; every decision merges the summary into listed memory [0]."""
    prompt = request.messages[-1]["content"] if request.messages else request.prompt
    if prompt.startswith("Task: read one session"):
        return "- Ana loves coffee [D2:1]\n- Ana drinks green tea [D2:2]"
    if prompt.startswith("Task: decide how"):
        memory = prompt.split("[0] ", 1)[1].split("\n", 1)[0]
        summary = prompt.split("New summary: ", 1)[1].split("\n", 1)[0]
        return f"Merge(0, {memory}; {summary})"
    return "unknown [NO_CITE]"


def test_two_merges_into_one_memory_in_a_session_keep_both_summaries():
    """Both were judged against the memory as the session began, and the env's MERGE replaces
    the text: the second Merge dropped the first summary."""
    from memgym.agents.base import EpisodeContext

    agent = load_agent(str(ROOT / "agents" / "rmm.yaml"), ScriptedBackend(_merge_everything_llm),
                       overrides=["encoder=hash"])
    obs = {"phase": "write", "action_format": "rmm", "date": "9 June, 2023",
           "dialogue": "Session 2 (9 June, 2023)\n[D2:1] Ana: I love coffee.\n"
                       "[D2:2] Ana: I drink green tea.",
           "memory_entries": shown_memories([MemoryEntry(
               "3", "Ana likes tea", speaker="Ana", session=1, created_at="8 May, 2023")])}
    action = run_sync(agent.act(obs, EpisodeContext(sampling_seed=0)))
    assert action == "Merge(0, Ana likes tea; Ana loves coffee; Ana drinks green tea)"


def test_unseeded_episodes_draw_fresh_gumbel_noise_and_seeded_ones_repeat():
    """The noise was seeded from `sampling_seed or 0`: every unseeded episode picked alike."""
    from memgym.agents.base import EpisodeContext

    agent = _agent()
    memories = shown_memories([MemoryEntry(str(i), f"Ana fact number {i}", speaker="Ana",
                                           session=1, created_at="8 May, 2023")
                               for i in range(20)])
    obs = {"phase": "answer", "question": "What does Ana like?", "memory_entries": memories,
           "dialogue": "", "date": "", "action_format": "answer"}

    def picks(seed):
        ctx = EpisodeContext(sampling_seed=seed)
        run_sync(agent.act(obs, ctx))
        return ctx.scratch["rmm_rerank"][0].sample.chosen

    assert picks(3) == picks(3)
    assert len({picks(None) for _ in range(8)}) > 1
