"""The answer format every env asks for, ``<answer>1.23</answer>``: writing it, checking it and reading the number back.

Reading never raises, whatever the completion holds: it feeds a reward, and a reward that throws
would kill a training run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cecl_pipeline.panel.text_format import format_rate

_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*%?\s*$")


@dataclass(frozen=True)
class AnswerFormat:
    strict: bool = False  # the tag must be the whole completion (nothing before or after it)

    def render(self, value: float) -> str:
        """The answer we write for ``value`` (warm-start targets), with the digits prompts show it with."""
        return f"<answer>{format_rate(value)}</answer>"

    def parse(self, completion: str) -> float | None:
        """The number in the last answer tag; None when absent, not a plain number, not finite, or (strict) not alone."""
        if not isinstance(completion, str):
            return None
        tags = _TAG.findall(completion)
        if not tags or (self.strict and completion.strip() != f"<answer>{tags[-1]}</answer>"):
            return None
        match = _NUMBER.match(tags[-1])
        if not match:
            return None
        try:
            value = float(match.group(1))
        except (ValueError, OverflowError):
            return None
        return value if math.isfinite(value) else None

    def well_formed(self, completion: str) -> bool:
        """Exactly one answer tag holding a plain number (and, if strict, nothing around it)."""
        return isinstance(completion, str) and len(_TAG.findall(completion)) == 1 and self.parse(completion) is not None
