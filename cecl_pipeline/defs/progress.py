"""Progress for a person waiting at the terminal: the newest run's own log lines, every few seconds, with an ETA.

A training or a walk-forward logs a line per step ("member 0: GRPO step 5/16 · reward … · MAE …",
"member 0: SFT step 40/200 · loss …", "2023Q1: 32 nco prompts × 8 samples …"). ``following_runs``
watches the instance from a thread while the CLI waits on its runs, and prints the newest such
line, labelled with the step that logged it and the run's quarter, plus an ETA whenever the line
says "step k/N".
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dagster as dg

STEP = re.compile(r"\b(\w+) step (\d+)/(\d+)")


@dataclass
class StepClock:
    """When each kind of step ("GRPO", "SFT") was first seen, to turn "step k/N" into a time left."""

    seen: dict[str, tuple[float, int]] = field(default_factory=dict)

    def eta(self, message: str, now: float) -> str:
        match = STEP.search(message)
        if not match:
            return ""
        step, total = int(match.group(2)), int(match.group(3))
        # Keyed by what precedes the count ("member 1: GRPO"), so each member and stage has its own clock.
        started, first = self.seen.setdefault(f"{message[:match.start()]}{match.group(1)}/{total}", (now, step))
        if step <= first or step >= total:
            return ""
        left = (now - started) / (step - first) * (total - step)
        return f" · ETA {int(left // 60)}:{int(left % 60):02d}"


def entry_label(run: dg.DagsterRun, entry) -> str:
    """The step (an asset's name) that logged the line, and the run's quarter."""
    return f"{entry.step_key or run.job_name} {run.tags.get('cecl/quarter', '')}".strip()


@contextmanager
def following_runs(instance: dg.DagsterInstance, say: Callable[[str], None] = print, every: float = 5.0) -> Iterator[None]:
    """While the block runs, print the newest log line of the instance's newest run (one started inside the block)."""
    before = {run.run_id for run in instance.get_runs(limit=1)}
    stop = threading.Event()
    thread = threading.Thread(target=_follow, args=(instance, before, stop, say, every), daemon=True, name="cecl-progress")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)


def _follow(instance: dg.DagsterInstance, before: set[str], stop: threading.Event, say: Callable[[str], None], every: float) -> None:
    run_id, cursor, clock, last = None, None, StepClock(), ""
    while not stop.wait(every):
        runs = instance.get_runs(limit=1)
        if not runs or runs[0].run_id in before:
            continue
        if runs[0].run_id != run_id:
            run_id, cursor, clock, last = runs[0].run_id, None, StepClock(), ""
        connection = instance.get_records_for_run(run_id, cursor=cursor)
        cursor = connection.cursor
        logged = [r.event_log_entry for r in connection.records if not r.event_log_entry.is_dagster_event and r.event_log_entry.user_message.strip()]
        if logged and logged[-1].user_message != last:
            last = logged[-1].user_message
            say(f"  … {entry_label(runs[0], logged[-1])}: {last}{clock.eta(last, time.monotonic())}")
