"""The quickstart's settings: train/quickstart.yaml is the GRPO stage `memgym quickstart` runs."""

from dataclasses import fields
from pathlib import Path

from memgym.quickstart import experiment as X
from memgym.trainer.config import GRPOConfig, load_config

RECIPE = Path(__file__).resolve().parents[2] / "train" / "quickstart.yaml"


def test_recipe_is_the_quickstarts_grpo_stage():
    recipe = load_config(RECIPE)
    expected = GRPOConfig(**X.GRPO, output_dir=recipe.output_dir,
                          env_kwargs=X.split_env_kwargs("train", num_tasks=X.TRAIN_TASKS,
                                                        tokenizer="embedded"),
                          agent=X.agent_recipe(**X.ROLLOUT_SAMPLING))
    differ = [f.name for f in fields(GRPOConfig)
              if getattr(recipe, f.name) != getattr(expected, f.name)]
    assert differ == []


def test_evaluation_tasks_are_disjoint_from_training_tasks():
    from memgym.data.synthetic import synthetic_tasks

    def streams(split, n):
        return {tuple(task.context) for task in synthetic_tasks(num_tasks=n, **X.SPLITS[split])}

    train = streams("train", X.TRAIN_TASKS)
    for split in X.EVAL_SPLITS:
        held_out = streams(split, X.EVAL_TASKS)
        assert len(held_out) == X.EVAL_TASKS
        assert not held_out & train, split
