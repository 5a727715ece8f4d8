"""The env registry: every env is complete, names are looked up in one place, and its parts reach prompts and rewards."""

import pytest

from cecl_pipeline.envs.registry import ENVS, UnknownEnvError, get_env
from cecl_pipeline.grpo.rewards import ForecastReward


def test_every_env_asks_for_the_answer_format_it_reads():
    for env in ENVS.values():
        assert env.name and env.summary and "<answer>" in env.instruction
        example = env.instruction.split("e.g. ")[-1].rstrip(".")
        assert env.answer.parse(example) == (-0.05 if env.anchor else 1.23), env.name


def test_an_unknown_env_is_refused_with_the_known_ones():
    with pytest.raises(UnknownEnvError, match="nco_single"):
        get_env("nco_double")


def test_the_env_decides_how_strictly_its_answers_are_rewarded():
    chatty = "The trend is flat. <answer>1.00</answer>"
    assert ForecastReward(get_env("nco").answer).score(chatty, 1.0).parsed == 1.0
    assert ForecastReward(get_env("nco_single").answer).score(chatty, 1.0).parsed is None
