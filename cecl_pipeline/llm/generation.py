"""Many completions per prompt, sampled an inference batch at a time, and their decoded text."""

from __future__ import annotations

import math

import jax
import numpy as np

from cecl_pipeline.llm.config import Qwen3Config
from cecl_pipeline.llm.sampler import SamplingConfig, sample


def generate(params, config: Qwen3Config, tokens: np.ndarray, valid: np.ndarray, sampling: SamplingConfig, rng: jax.Array, chunk: int,
             group_size: int = 1):
    """``group_size`` completions of each prompt row, sampled ``chunk`` completions at a time (the inference batch).

    Returns sequences and their validity, in runs of ``group_size`` rows per prompt. Within a chunk,
    the completions of one prompt share its prefill.
    """
    share = math.gcd(chunk, group_size)  # completions of one prompt that always land in the same chunk
    tokens, valid = np.repeat(tokens, group_size // share, 0), np.repeat(valid, group_size // share, 0)
    rows = chunk // share
    sequences, sequence_valid = [], []
    for i, start in enumerate(range(0, len(tokens), rows)):
        result = sample(params, config, tokens[start : start + rows], valid[start : start + rows], sampling, jax.random.fold_in(rng, i),
                        group_size=share)
        sequences.append(np.asarray(result.sequences))
        sequence_valid.append(np.asarray(result.sequence_valid))
    return np.concatenate(sequences), np.concatenate(sequence_valid)


def decode_completions(sequences: np.ndarray, sequence_valid: np.ndarray, prompt_width: int, tokenizer, pad_id: int) -> list[str]:
    """The text of each row's new tokens (special tokens such as EOS left out)."""
    completion_ids = np.where(sequence_valid[:, prompt_width:], sequences[:, prompt_width:], pad_id)
    return tokenizer.batch_decode(completion_ids.tolist(), skip_special_tokens=True)
