"""The combining env: its prompt carries the challengers' forecasts from the history alone, and its warm start imitates the combination."""

import numpy as np
import pandas as pd
import pytest

from cecl_pipeline.challengers.registry import challenger_forecasts
from cecl_pipeline.envs.registry import ENVS
from cecl_pipeline.grpo.rewards import ForecastReward
from cecl_pipeline.panel.prompts import build_prompts
from cecl_pipeline.panel.text_format import format_rate
from cecl_pipeline.panel.windows import build_windows
from cecl_pipeline.quarters import quarter_range

QUARTERS = quarter_range("2016Q1", "2019Q2")  # 12 history quarters, the target 2019Q1, and one quarter after it
COMBINED = ENVS["nco_combined"]


def panel(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"entity_id": "bank", "segment": segment, "quarter": q, "nco_rate": level * (1 + 0.1 * k + rng.normal(0, 0.05))}
            for segment, level in (("card", 4.0), ("mortgage", 0.05)) for k, q in enumerate(QUARTERS)]
    return pd.DataFrame(rows)


def combined_prompts(frame: pd.DataFrame, env=COMBINED) -> pd.DataFrame:
    history, target = frame[frame.quarter < "2019Q1"], frame[frame.quarter == "2019Q1"]
    windows = build_windows(history, target, "2019Q1")
    return build_prompts(windows, [env]).to_pandas()


def test_the_prompt_lists_each_challengers_forecast_from_the_window_alone():
    prompts = combined_prompts(panel(0))
    shown = (("auto_ets", "ETS"), ("auto_arima", "ARIMA"), ("theta", "Theta"), ("comb", "Combination"), ("naive_comb", "Anchor"))
    fitted = challenger_forecasts(list(prompts["history"]), [name for name, _ in shown])
    for row, user in enumerate(prompts["user"]):
        assert "Statistical forecasts for 2019Q1" in user
        for name, label in shown:
            assert f"\n{label}" in user and format_rate(fitted[name].mean[row]) in user.split(f"\n{label}")[1].split("\n")[0]


def test_values_dated_at_or_after_the_target_quarter_never_change_the_prompt():
    original = panel(0)
    changed = original.copy()
    late = changed["quarter"] >= "2019Q1"
    changed.loc[late, "nco_rate"] = changed.loc[late, "nco_rate"] * 7 + 3
    before, after = combined_prompts(original), combined_prompts(changed)
    assert list(before["user"]) == list(after["user"]) and not np.allclose(before["target"], after["target"])
    earlier = original.copy()
    earlier.loc[earlier["quarter"] == "2018Q4", "nco_rate"] += 1.0
    assert list(combined_prompts(earlier)["user"]) != list(before["user"])  # the history does reach the forecasts


def test_the_warm_start_teaches_the_combination_here_and_the_target_in_the_seed_envs():
    prompts = combined_prompts(panel(1))
    comb = challenger_forecasts(list(prompts["history"]), ["comb"])["comb"].mean
    assert np.array_equal(COMBINED.warm_start_answers(prompts), comb)
    assert not np.allclose(comb, prompts["target"])
    for name in ("nco", "nco_single", "nco_enhanced"):
        assert np.array_equal(ENVS[name].warm_start_answers(prompts), prompts["target"].to_numpy())
        assert not ENVS[name].anchors(prompts).any()


def test_nco_adjust_answers_a_change_to_the_anchor_and_its_warm_start_teaches_no_change():
    prompts = combined_prompts(panel(2))
    adjust = ENVS["nco_adjust"]
    fitted = challenger_forecasts(list(prompts["history"]), ["persistence", "comb", "naive_comb"])
    anchors = fitted["naive_comb"].mean
    assert np.allclose(anchors, (fitted["persistence"].mean + fitted["comb"].mean) / 2, rtol=0, atol=1e-12)
    assert np.array_equal(adjust.anchors(prompts), anchors) and not adjust.warm_start_answers(prompts).any()
    body = lambda frame: list(frame["user"].str.split("What will").str[0])
    assert body(combined_prompts(panel(2), adjust)) == body(prompts)  # the same history and challengers; only the question differs
    reward = ForecastReward(adjust.answer)
    target, anchor = float(prompts["target"][0]), float(anchors[0])
    moved = reward.score("<answer>+0.10</answer>", target, 0.2, anchor)
    assert moved.parsed == pytest.approx(anchor + 0.10) and moved.error == pytest.approx(abs(anchor + 0.10 - target))
    assert reward.score("<answer>0.00</answer>", target, 0.2, anchor).parsed == pytest.approx(anchor)
