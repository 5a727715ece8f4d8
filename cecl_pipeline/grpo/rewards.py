"""Rewards for NCO-rate forecasts written as ``<answer>1.23</answer>``.

reward = format_weight × format + (accuracy if the answer parses and is plausible, else −penalty)

- format: 1 when the completion holds exactly one answer tag with a plain number in it; for the
  strict single-number env (``nco_single``) nothing else may surround it.
- accuracy: exp(−|error| / scale) with the error in percentage points — 1 for a perfect forecast,
  continuous, and bounded in (0, 1], so one wild completion cannot dominate a group.
- penalty: for a missing or unparseable answer, or one outside the plausible NCO range.

Nothing here raises, whatever the completion holds: a reward function that throws would kill a run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*%?\s*$")


@dataclass(frozen=True)
class RewardConfig:
    accuracy_scale: float = 1.0  # percentage points at which accuracy falls to 1/e
    format_weight: float = 0.1
    penalty: float = 1.0
    plausible_min: float = -10.0  # the panel's own nco_rate range
    plausible_max: float = 50.0
    strict_single: bool = False  # nco_single: the tag must be the whole completion


@dataclass(frozen=True)
class Reward:
    total: float
    format_ok: bool
    parsed: float | None  # the forecast, when it parses and is plausible
    error: float | None  # |forecast − target| in percentage points


def parse_answer(completion: str, strict_single: bool = False) -> float | None:
    """The number in the last answer tag; None when absent, not a plain number, or not finite."""
    if not isinstance(completion, str):
        return None
    tags = _TAG.findall(completion)
    if not tags or (strict_single and completion.strip() != f"<answer>{tags[-1]}</answer>"):
        return None
    match = _NUMBER.match(tags[-1])
    if not match:
        return None
    try:
        value = float(match.group(1))
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def format_ok(completion: str, strict_single: bool = False) -> bool:
    """Exactly one answer tag holding a plain number (and, if strict, nothing around it)."""
    return isinstance(completion, str) and len(_TAG.findall(completion)) == 1 and parse_answer(completion, strict_single) is not None


def score(completion: str, target: float, config: RewardConfig = RewardConfig()) -> Reward:
    """The reward of one completion against the realised NCO rate ``target``; never raises."""
    try:
        return _score(completion, float(target), config)
    except Exception:  # noqa: BLE001 — a reward must never stop training; treat as unparseable
        return Reward(-config.penalty, False, None, None)


def plausible_answer(completion: str, config: RewardConfig = RewardConfig()) -> float | None:
    """The forecast in the completion when it parses and lies in the plausible NCO range, else None."""
    value = parse_answer(completion, config.strict_single)
    return value if value is not None and config.plausible_min <= value <= config.plausible_max else None


def _score(completion: str, target: float, config: RewardConfig) -> Reward:
    shaped = format_ok(completion, config.strict_single)
    value = plausible_answer(completion, config)
    bonus = config.format_weight * shaped
    if value is None or not math.isfinite(target):
        return Reward(bonus - config.penalty, shaped, None, None)
    error = abs(value - target)
    return Reward(bonus + math.exp(-error / config.accuracy_scale), shaped, value, error)


def score_batch(completions: list[str], targets: list[float], config: RewardConfig = RewardConfig()) -> list[Reward]:
    return [score(c, t, config) for c, t in zip(completions, targets, strict=True)]
