import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cecl_pipeline.envs.answer import AnswerFormat
from cecl_pipeline.grpo.rewards import ForecastReward, RewardConfig


def score(completion, target, config=RewardConfig(), answer=AnswerFormat()):
    return ForecastReward(answer, config).score(completion, target)


def test_accuracy_is_continuous_bounded_and_scaled():
    config = RewardConfig(accuracy_scale=0.5, format_weight=0.0)
    perfect = score("<answer>2.00</answer>", 2.0, config)
    assert perfect.total == 1.0 and perfect.error == 0.0
    half_point = score("<answer>2.5</answer>", 2.0, config)
    assert half_point.total == pytest.approx(math.exp(-1.0)) and half_point.error == pytest.approx(0.5)
    rewards = [score(f"<answer>{2 + d:.3f}</answer>", 2.0, config).total for d in (0.0, 0.01, 0.1, 1.0, 10.0)]
    assert rewards == sorted(rewards, reverse=True) and all(0 < r <= 1 for r in rewards)


def test_penalties_for_unparseable_and_implausible_answers():
    config = RewardConfig(format_weight=0.1, penalty=1.0)
    assert score("no tag at all", 2.0, config).total == pytest.approx(-1.0)
    implausible = score("<answer>75</answer>", 2.0, config)
    assert implausible.total == pytest.approx(0.1 - 1.0) and implausible.parsed is None
    assert score("<answer>2</answer>", 2.0, config).total == pytest.approx(1.1)


def test_batch_keeps_order_and_refuses_mismatched_lengths():
    reward = ForecastReward()
    rewards = reward(["<answer>1</answer>", "x"], [1.0, 1.0])
    assert [r.format_ok for r in rewards] == [True, False]
    with pytest.raises(ValueError):
        reward(["a"], [1.0, 2.0])


@settings(max_examples=500, deadline=None)
@given(st.text(), st.floats(allow_nan=True, allow_infinity=True))
def test_never_raises_and_stays_bounded(text, target):
    config = RewardConfig()
    for answer in (AnswerFormat(), AnswerFormat(strict=True)):
        reward = score(text, target, config, answer)
        assert -config.penalty <= reward.total <= 1 + config.format_weight


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="<>/answer0123456789.-+% \n", max_size=60), st.floats(-10, 50))
def test_never_raises_on_near_miss_tags(text, target):
    reward = score(text, target)
    assert math.isfinite(reward.total)
