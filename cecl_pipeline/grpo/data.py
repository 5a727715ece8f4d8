"""Training prompts for GRPO: loading with the look-ahead guard, left-padded tokens, a resumable cursor.

A policy that serves quarter Q trains only on prompts whose target is dated before Q; the loader
refuses anything else. The cursor's order depends only on (seed, epoch), so its state — three
integers — is enough to resume exactly where a run stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cecl_pipeline.challengers.scale import naive_scale
from cecl_pipeline.panel.windows import assert_no_lookahead
from cecl_pipeline.quarters import to_ordinal

PROMPT_COLUMNS = ["prompt_id", "env", "entity_id", "segment", "target_quarter", "history", "target", "system", "user", "prompt"]


def load_training_prompts(paths: list[Path], env: str, before_quarter: str) -> pd.DataFrame:
    """Rows of ``env`` from the prompt Parquet files, all with targets dated before ``before_quarter``."""
    frames = [pd.read_parquet(p, columns=PROMPT_COLUMNS) for p in paths]
    prompts = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PROMPT_COLUMNS)
    prompts = prompts[prompts["env"] == env].reset_index(drop=True)
    assert_no_lookahead(prompts["target_quarter"], before_quarter, f"the {env} training prompts")
    if prompts.empty:
        raise ValueError(f"no {env} prompts with a target before {before_quarter} in {len(paths)} file(s)")
    return prompts.sort_values(["target_quarter", "prompt_id"], kind="stable").reset_index(drop=True)


def training_quarters_before(available: list[str], quarter: str) -> list[str]:
    """The prompt quarters a policy for ``quarter`` may train on: strictly earlier ones."""
    return [q for q in available if to_ordinal(q) < to_ordinal(quarter)]


@dataclass(frozen=True)
class PromptSet:
    """Encoded prompts, their realised targets and each series' own scale: what rollouts and the warm-start read."""

    tokens: np.ndarray  # [n, P] int32, left-padded
    valid: np.ndarray  # [n, P] bool
    targets: np.ndarray  # [n] float64, the realised NCO rate of each prompt's target quarter
    scales: np.ndarray  # [n] float64, the series' mean absolute quarterly change over its history (``naive_scale``)
    anchors: np.ndarray  # [n] float64, what each answer is added to for the forecast (``Env.anchors``; 0 for most envs)

    @classmethod
    def of_rows(cls, tokens: np.ndarray, valid: np.ndarray, rows: pd.DataFrame, anchors: np.ndarray) -> PromptSet:
        """The set for prompt ``rows`` (with ``target`` and ``history`` columns), encoded as ``tokens``/``valid``."""
        return cls(tokens, valid, rows["target"].to_numpy(np.float64), naive_scale(list(rows["history"])), np.asarray(anchors, np.float64))

    def __len__(self) -> int:
        return len(self.targets)

    def take(self, rows) -> PromptSet:
        return PromptSet(self.tokens[rows], self.valid[rows], self.targets[rows], self.scales[rows], self.anchors[rows])


@dataclass
class CursorState:
    seed: int
    epoch: int = 0
    position: int = 0


class PromptCursor:
    """Walks a shuffled order of ``size`` prompts, epoch after epoch; ``state`` resumes it exactly."""

    def __init__(self, size: int, state: CursorState):
        if size <= 0:
            raise ValueError("a cursor needs at least one prompt")
        self.size, self.state = size, CursorState(**asdict(state))

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.state.seed, epoch]).permutation(self.size)

    def next(self, count: int) -> np.ndarray:
        """The next ``count`` prompt indices, crossing into the next epoch when one ends."""
        taken: list[np.ndarray] = []
        while count:
            order = self._order(self.state.epoch)
            chunk = order[self.state.position : self.state.position + count]
            taken.append(chunk)
            count -= len(chunk)
            self.state.position += len(chunk)
            if self.state.position == self.size:
                self.state.epoch, self.state.position = self.state.epoch + 1, 0
        return np.concatenate(taken)

