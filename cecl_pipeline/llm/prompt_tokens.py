"""Prompt rows → what the model reads: chat-template text, left-padded token ids, and the stop and pad ids.

Training, sampling, the debug view and the benchmarks all tokenise through here, so a prompt is
encoded the same way wherever it is read. Needs the tokenizer and numpy, not JAX.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cecl_pipeline.llm.chat_template import ChatTemplate

PROMPT_WIDTH_MULTIPLE = 16  # prompt tensors are padded to a multiple of this, not to prompt_length


def tokenize_left_padded(texts: list[str], tokenizer, width: int, pad_id: int, ids: list[str] | None = None,
                         fit_multiple: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Token ids [N, width] int32 padded on the left, and their validity mask; refuses prompts longer than ``width``.

    With ``fit_multiple``, the width shrinks to the longest prompt rounded up to that multiple (never
    above ``width``), so short prompts do not pay for a generous ``prompt_length``.
    """
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    lengths = np.array([len(e) for e in encoded])
    if (too_long := np.flatnonzero(lengths > width)).size:
        names = [ids[i] if ids else f"#{i}" for i in too_long[:5]]
        raise ValueError(f"{too_long.size} prompt(s) exceed prompt_length {width} tokens (longest {lengths.max()}): {', '.join(names)}; raise prompt_length")
    if fit_multiple and len(lengths):
        width = min(width, -(-int(lengths.max()) // fit_multiple) * fit_multiple)
    tokens = np.full((len(texts), width), pad_id, np.int32)
    valid = np.arange(width)[None, :] >= (width - lengths)[:, None]
    tokens[valid] = np.concatenate([np.asarray(e, np.int32) for e in encoded]) if len(encoded) else []
    return tokens, valid


def stop_and_pad_ids(model_config, tokenizer) -> tuple[tuple[int, ...], int]:
    """The EOS ids a completion stops at (the model's) and the pad id (the tokenizer's)."""
    eos = model_config.eos_token_id
    return (() if eos is None else (int(eos),)), tokenizer.pad_token_id


def render_prompts(template: ChatTemplate, prompts) -> list[str]:
    """The prompt rows' system + user text in the model's chat template: exactly what the model reads."""
    return template.render(pa.array(prompts["system"], pa.string()), pa.array(prompts["user"], pa.string())).to_pylist()


def encode_texts(template: ChatTemplate, texts: list[str], ids: list[str], prompt_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded token ids and validity of already rendered prompt ``texts`` (``ids`` name them in errors)."""
    pad = template.tokenizer.pad_token_id
    return tokenize_left_padded(texts, template.tokenizer, prompt_length, pad, ids, fit_multiple=PROMPT_WIDTH_MULTIPLE)


def encode_prompts(template: ChatTemplate, prompts, prompt_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded token ids and validity of the rendered prompt rows."""
    return encode_texts(template, render_prompts(template, prompts), list(prompts["prompt_id"]), prompt_length)
