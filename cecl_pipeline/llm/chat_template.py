"""Render prompts through a model tokenizer's chat template, for a whole column at once.

The template is rendered once with marker strings in place of the system and user text; the
text between the markers is then joined around every row with pyarrow. Qwen3's template passes
system and user content through unchanged, which the tests check against ``apply_chat_template``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

_SYSTEM_MARK = "\x00SYSTEM\x00"
_USER_MARK = "\x00USER\x00"


class ChatTemplate:
    def __init__(self, tokenizer_dir: Path | str, enable_thinking: bool = False):
        from transformers import AutoTokenizer

        self.tokenizer_dir = Path(tokenizer_dir)
        if not (self.tokenizer_dir / "tokenizer_config.json").exists():
            raise FileNotFoundError(f"{self.tokenizer_dir}: no tokenizer_config.json; point tokenizer_dir at a model's tokenizer folder")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.tokenizer_dir), local_files_only=True)
        if not self.tokenizer.chat_template:
            raise ValueError(f"{self.tokenizer_dir}: the tokenizer has no chat template")
        self.enable_thinking = enable_thinking
        rendered = self.apply([_SYSTEM_MARK], [_USER_MARK])[0]
        before, rest = rendered.split(_SYSTEM_MARK)
        self._between, self._after = rest.split(_USER_MARK)
        self._before = before
        digest = hashlib.sha256(self.tokenizer.chat_template.encode()).hexdigest()[:12]
        self.name = f"{self.tokenizer_dir.name}@{digest}{'+thinking' if enable_thinking else ''}"

    def apply(self, systems: list[str], users: list[str]) -> list[str]:
        """The reference path: transformers' own rendering, one conversation at a time."""
        return [
            self.tokenizer.apply_chat_template(
                [{"role": "system", "content": s}, {"role": "user", "content": u}],
                tokenize=False,
                add_generation_prompt=True,
                enable_thinking=self.enable_thinking,
            )
            for s, u in zip(systems, users, strict=False)
        ]

    def render(self, system: pa.Array, user: pa.Array) -> pa.Array:
        return pc.binary_join_element_wise(pa.scalar(self._before), system, pa.scalar(self._between), user, pa.scalar(self._after), "")
