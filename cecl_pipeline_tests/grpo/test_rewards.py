import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cecl_pipeline.challengers.scale import SCALE_FLOOR, naive_scale
from cecl_pipeline.envs.answer import AnswerFormat
from cecl_pipeline.grpo.rewards import ForecastReward, RewardConfig
from cecl_pipeline.panel.text_format import format_rate


def score(completion, target, config=RewardConfig(), answer=AnswerFormat(), scale=0.3):
    return ForecastReward(answer, config).score(completion, target, scale)


def test_accuracy_in_percentage_points_is_continuous_bounded_and_scaled():
    config = RewardConfig(accuracy_scale=0.5, format_weight=0.0, error_unit="pp")
    perfect = score("<answer>2.00</answer>", 2.0, config)
    assert perfect.total == 1.0 and perfect.error == 0.0
    half_point = score("<answer>2.5</answer>", 2.0, config)
    assert half_point.total == pytest.approx(math.exp(-1.0)) and half_point.error == pytest.approx(0.5)
    rewards = [score(f"<answer>{2 + d:.3f}</answer>", 2.0, config).total for d in (0.0, 0.01, 0.1, 1.0, 10.0)]
    assert rewards == sorted(rewards, reverse=True) and all(0 < r <= 1 for r in rewards)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.5, 1.5), min_size=12, max_size=12), st.floats(0.5, 1.5), st.floats(-0.5, 0.5))
def test_the_same_relative_error_earns_the_same_reward_on_a_mortgage_and_a_card_series(shape, target_shape, relative_error):
    """A series at about 0.1% and the same series × 50 (about 5%): scale, target and miss all scale alike."""
    # Where the small series' scale is floored (a flat history), it no longer scales with the level: by design.
    assume(naive_scale([0.1 * np.asarray(shape)])[0] > SCALE_FLOOR)
    reward = ForecastReward(config=RewardConfig(format_weight=0.0))
    rewards = []
    for level in (0.1, 5.0):
        history, target = level * np.asarray(shape), level * target_shape
        forecast = target * (1 + relative_error)
        rewards.append(reward.score(f"<answer>{forecast!r}</answer>", target, naive_scale([history])[0]).total)
    assert rewards[0] == pytest.approx(rewards[1], rel=1e-9, abs=1e-12)


def test_series_unit_reward_falls_to_1_over_e_at_one_scale_of_error_and_never_divides_by_zero():
    config = RewardConfig(format_weight=0.0, accuracy_scale=1.0)
    assert score(f"<answer>{format_rate(1.3)}</answer>", 1.0, config, scale=0.3).total == pytest.approx(math.exp(-1.0))
    for scale in (0.0, -1.0, math.nan, math.inf):  # each read as the 0.01 pp floor: a 0.01 pp miss is one unit
        assert score("<answer>1.01</answer>", 1.0, config, scale=scale).total == pytest.approx(math.exp(-1.0))


def test_penalties_for_unparseable_and_implausible_answers():
    config = RewardConfig(format_weight=0.1, penalty=1.0)
    assert score("no tag at all", 2.0, config).total == pytest.approx(-1.0)
    implausible = score("<answer>75</answer>", 2.0, config)
    assert implausible.total == pytest.approx(0.1 - 1.0) and implausible.parsed is None
    assert score("<answer>2</answer>", 2.0, config).total == pytest.approx(1.1)


def test_batch_keeps_order_and_refuses_mismatched_lengths():
    reward = ForecastReward()
    rewards = reward(["<answer>1</answer>", "x"], [1.0, 1.0], [0.1, 0.1], [0.0, 0.0])
    assert [r.format_ok for r in rewards] == [True, False]
    with pytest.raises(ValueError):
        reward(["a"], [1.0, 2.0], [0.1, 0.1], [0.0, 0.0])


@settings(max_examples=500, deadline=None)
@given(st.text(), st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
def test_never_raises_and_stays_bounded(text, target, scale):
    config = RewardConfig()
    for answer in (AnswerFormat(), AnswerFormat(strict=True)):
        reward = score(text, target, config, answer, scale)
        assert -config.penalty <= reward.total <= 1 + config.format_weight


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="<>/answer0123456789.-+% \n", max_size=60), st.floats(-10, 50))
def test_never_raises_on_near_miss_tags(text, target):
    reward = score(text, target)
    assert math.isfinite(reward.total)
