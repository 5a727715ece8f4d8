"""Following a training in progress: a member's metrics.jsonl, line by line as steps finish."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def follow(path: Path, poll_seconds: float = 1.0, keep_going: Callable[[], bool] = lambda: True) -> Iterator[dict]:
    """Each logged step of ``path``, then new ones as they are appended, while ``keep_going()`` and the file exists."""
    position = 0
    while True:
        if not path.is_file():
            return  # the member finished: its work directory is dropped once the policy is written
        with open(path, encoding="utf-8") as fh:
            fh.seek(position)
            for line in iter(fh.readline, ""):
                if not line.endswith("\n"):
                    break  # a line still being written: read it whole next time
                position += len(line.encode())
                yield json.loads(line)
        if not keep_going():
            return
        time.sleep(poll_seconds)
