"""Every prompt environment, each one object: its prompt (body and instruction), its answer format and what it reads.

Adding an env is adding an entry here; prompts, training, sampling, debug and the CLI take
everything from the ``Env`` they look up.
"""

from __future__ import annotations

from dataclasses import dataclass

from cecl_pipeline.envs.answer import AnswerFormat
from cecl_pipeline.panel.prompts import Body, enhanced_table, history_lines


@dataclass(frozen=True)
class Env:
    name: str
    summary: str  # one line, for --help and the web UI
    instruction: str  # the prompt's closing line: how to answer
    body: Body  # how the prompt lays out the history
    answer: AnswerFormat = AnswerFormat()
    needs_macro: bool = False  # the body reads the macro table


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
    )
}


class UnknownEnvError(ValueError):
    pass


def get_env(name: str) -> Env:
    """The env called ``name``; an unknown name is refused with the known ones."""
    if name not in ENVS:
        raise UnknownEnvError(f"unknown env {name!r}: choose from {', '.join(ENVS)}")
    return ENVS[name]
