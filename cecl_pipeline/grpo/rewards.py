"""The reward of an NCO-rate forecast written in an env's answer format (``<answer>1.23</answer>``).

reward = format_weight × well-formed + (accuracy if the answer parses and is plausible, else −penalty)

- well-formed: exactly one answer tag holding a plain number, as the env's ``AnswerFormat`` says
  (for ``nco_single``, nothing may surround it).
- accuracy: exp(−|error| / (accuracy_scale × unit)): 1 for a perfect forecast, continuous, and
  bounded in (0, 1], so one wild completion cannot dominate a group. With ``error_unit="series"``
  (the default) the unit is the series' own scale, its mean absolute quarterly change over the
  prompt's history (``naive_scale``), so a 10% miss on a 0.1% mortgage rate and on a 5% card rate
  earn the same reward and credit cards no longer drown out every other segment. With ``"pp"`` the
  unit is one percentage point.
- penalty: for a missing or unparseable answer, or one outside the plausible NCO range.

The forecast is the answer plus the prompt's anchor: 0 for envs that answer with the rate itself,
the anchor challenger's forecast for ``nco_adjust``, whose answers are a change to it.

``ForecastReward`` is the reward function the rollout is given: (completions, targets, scales, anchors) → rewards.
Nothing here raises, whatever the completion holds: a reward function that throws would kill a run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cecl_pipeline.challengers.scale import SCALE_FLOOR
from cecl_pipeline.envs.answer import AnswerFormat
from cecl_pipeline.grpo.knobs import default


@dataclass(frozen=True)
class RewardConfig:
    accuracy_scale: float = default("grpo.rewards.accuracy_scale")  # errors, in ``error_unit``s, at which accuracy falls to 1/e
    error_unit: str = default("grpo.rewards.error_unit")  # "series" (the series' own scale) or "pp"
    penalty: float = default("grpo.rewards.penalty")
    format_weight: float = 0.1
    plausible_min: float = -10.0  # the panel's own nco_rate range
    plausible_max: float = 50.0


@dataclass(frozen=True)
class Reward:
    total: float
    format_ok: bool
    parsed: float | None  # the forecast (answer + anchor), when it parses and is plausible
    error: float | None  # |forecast − target| in percentage points


class RewardFn(Protocol):
    """What a rollout scores its completions with: one reward per completion, given its target, its series' scale and its anchor."""

    def __call__(self, completions: Sequence[str], targets: Sequence[float], scales: Sequence[float],
                 anchors: Sequence[float]) -> list[Reward]: ...


@dataclass(frozen=True)
class ForecastReward:
    """The forecast reward for one answer format (an env's) and one set of reward settings."""

    answer: AnswerFormat = AnswerFormat()
    config: RewardConfig = field(default_factory=RewardConfig)

    def __call__(self, completions: Sequence[str], targets: Sequence[float], scales: Sequence[float],
                 anchors: Sequence[float]) -> list[Reward]:
        return [self.score(c, t, s, a) for c, t, s, a in zip(completions, targets, scales, anchors, strict=True)]

    def score(self, completion: str, target: float, scale: float = 1.0, anchor: float = 0.0) -> Reward:
        """The reward of one completion against the realised NCO rate ``target`` of a series of scale ``scale``; never raises."""
        try:
            return self._score(completion, float(target), self._unit(scale), float(anchor))
        except Exception:
            return Reward(-self.config.penalty, False, None, None)

    def plausible(self, completion: str, anchor: float = 0.0) -> float | None:
        """The forecast (the answer plus ``anchor``) when the answer parses and the forecast lies in the plausible NCO range, else None."""
        value = self.answer.parse(completion)
        forecast = None if value is None else value + anchor
        return forecast if forecast is not None and self.config.plausible_min <= forecast <= self.config.plausible_max else None

    def _unit(self, scale: float) -> float:
        """Percentage points per error unit; a missing or degenerate scale is read as the floor, never as zero."""
        if self.config.error_unit == "pp":
            return 1.0
        scale = float(scale)
        return max(scale, SCALE_FLOOR) if math.isfinite(scale) else SCALE_FLOOR

    def _score(self, completion: str, target: float, unit: float, anchor: float) -> Reward:
        shaped = self.answer.well_formed(completion)
        value = self.plausible(completion, anchor)
        bonus = self.config.format_weight * shaped
        if value is None or not math.isfinite(target):
            return Reward(bonus - self.config.penalty, shaped, None, None)
        error = abs(value - target)
        return Reward(bonus + math.exp(-error / (self.config.accuracy_scale * unit)), shaped, value, error)
