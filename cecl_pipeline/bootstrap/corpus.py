"""The tokenizer's training corpus: prompts rendered by the production prompt code from the synthetic panel.

It depends on nothing a user supplies, so the embedded default model is reproducible; the prompt
templates, quarter labels, segment names and digit-by-digit numbers it holds are what real prompts hold.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cecl_pipeline.bootstrap.synthetic import synthesize_macro, synthesize_panel
from cecl_pipeline.envs.registry import ENVS
from cecl_pipeline.panel.prompts import build_prompts
from cecl_pipeline.panel.windows import build_windows
from cecl_pipeline.quarters import quarter_range

CORPUS_QUARTERS = ("2004Q1", "2024Q4")
ANSWER_STYLES = (
    "<answer>{value:.2f}</answer>",
    "The rate has been {trend} over the last quarters, so I expect about {value:.2f}%.\n<answer>{value:.2f}</answer>",
)


def prompt_corpus(n_banks: int = 6, seed: int = 0, every: int = 4) -> Iterator[str]:
    """System + user texts of every env for every ``every``-th quarter, then answers in the expected format."""
    first, last = CORPUS_QUARTERS
    macro = synthesize_macro("2000Q1", last, seed)
    panel = synthesize_panel(n_banks, "2000Q1", last, seed, macro=macro)
    for target in quarter_range(first, last)[::every]:
        history = panel[panel["quarter"] < target]
        windows = build_windows(history, panel[panel["quarter"] == target], target)
        table = build_prompts(windows, list(ENVS.values()), macro)
        yield from table.column("system").unique().to_pylist()
        yield from table.column("user").to_pylist()
        yield from _answers(windows.target, seed)


def _answers(targets: np.ndarray, seed: int) -> Iterator[str]:
    rng = np.random.default_rng(seed)
    for value, style, rising in zip(targets, rng.integers(0, len(ANSWER_STYLES), len(targets)), rng.random(len(targets)) < 0.5, strict=False):
        yield ANSWER_STYLES[style].format(value=value, trend="rising" if rising else "falling")
