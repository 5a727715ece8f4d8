"""Every prompt environment, each one object: its prompt (body and instruction), its answer format and what it reads.

Adding an env is adding an entry here; prompts, training, sampling, debug and the CLI take
everything from the ``Env`` they look up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cecl_pipeline.envs.answer import AnswerFormat
from cecl_pipeline.envs.combining import history_and_challengers
from cecl_pipeline.panel.prompts import Body, enhanced_table, history_lines


@dataclass(frozen=True)
class Env:
    name: str
    summary: str  # one line, for --help and the web UI
    instruction: str  # the prompt's closing line: how to answer
    body: Body  # how the prompt lays out the history
    answer: AnswerFormat = AnswerFormat()
    needs_macro: bool = False  # the body reads the macro table
    imitates: str | None = None  # the challenger whose forecast the warm start teaches; None: the realised target
    anchor: str | None = None  # answers are the change, in pp, to this challenger's forecast; None: the rate itself

    def anchors(self, rows: pd.DataFrame) -> np.ndarray:
        """What each answer to prompt ``rows`` is added to for the forecast: the anchor challenger's forecast, or 0."""
        return self.anchors_and_warm_start_answers(rows)[0]

    def warm_start_answers(self, rows: pd.DataFrame) -> np.ndarray:
        """What the SFT warm start writes as the answer to each of prompt ``rows``: the imitated forecast (or the target), less the anchor."""
        return self.anchors_and_warm_start_answers(rows)[1]

    def anchors_and_warm_start_answers(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Both of the above, with the challengers they need fitted once (training needs both)."""
        from cecl_pipeline.challengers.registry import challenger_forecasts  # statsmodels and arch: seconds to import, so only here

        needed = [name for name in (self.anchor, self.imitates) if name]
        fitted = challenger_forecasts(list(rows["history"]), needed) if needed else {}
        anchors = fitted[self.anchor].mean if self.anchor else np.zeros(len(rows))
        taught = fitted[self.imitates].mean if self.imitates else rows["target"].to_numpy(np.float64)
        return anchors, taught - anchors


ENVS: dict[str, Env] = {
    env.name: env
    for env in (
        Env(
            "nco",
            "12 quarters of the rate, a short reasoning, then the answer tag",
            "Think briefly about the trend, then give your forecast in percent inside <answer></answer> tags, e.g. <answer>1.23</answer>.",
            history_lines,
        ),
        Env(
            "nco_single",
            "the same history; the answer tag and nothing else",
            "Reply with the forecast in percent inside <answer></answer> tags and nothing else, e.g. <answer>1.23</answer>.",
            history_lines,
            AnswerFormat(strict=True),
        ),
        Env(
            "nco_enhanced",
            "adds QoQ/YoY changes, the 4-quarter mean and macro covariates",
            "Use the history, its changes and the macro covariates. Think briefly, then give your forecast in percent "
            "inside <answer></answer> tags, e.g. <answer>1.23</answer>.",
            enhanced_table,
            needs_macro=True,
        ),
        Env(
            "nco_combined",
            "the history plus ETS, ARIMA, Theta and their combination's forecasts; the answer tag only",
            "Weigh the history and the statistical forecasts, then reply with your forecast in percent inside <answer></answer> "
            "tags and nothing else, e.g. <answer>1.23</answer>.",
            history_and_challengers,
            AnswerFormat(strict=True),
            imitates="comb",
        ),
        Env(
            "nco_adjust",
            "the same prompt as nco_combined; the answer is the change to the anchor (mean of persistence and the combination), in pp",
            "Reply with how many percentage points you expect the rate to land above (+) or below (-) the anchor's forecast, "
            "inside <answer></answer> tags and nothing else, e.g. <answer>-0.05</answer>.",
            history_and_challengers,
            AnswerFormat(strict=True),
            imitates="naive_comb",
            anchor="naive_comb",
        ),
    )
}


class UnknownEnvError(ValueError):
    pass


def get_env(name: str) -> Env:
    """The env called ``name``; an unknown name is refused with the known ones."""
    if name not in ENVS:
        raise UnknownEnvError(f"unknown env {name!r}: choose from {', '.join(ENVS)}")
    return ENVS[name]
