"""Progress at the terminal: a run's own step lines, followed from another thread, with an ETA."""

import time

import dagster as dg

from cecl_pipeline.defs.progress import StepClock, following_runs


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["2019Q1"]))
def slow_training(context: dg.AssetExecutionContext) -> None:
    for step in range(1, 6):
        time.sleep(0.5)
        context.log.info(f"member 0: GRPO step {step}/5 · reward +0.{step} · MAE 0.2 pp")


def test_the_newest_step_line_of_the_running_run_is_printed_with_an_eta(tmp_path):
    said: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize([slow_training], instance=instance, partition_key="2019Q1")  # a run from before: never followed
        with following_runs(instance, said.append, every=0.2):
            assert dg.materialize([slow_training], instance=instance, partition_key="2019Q1", tags={"cecl/quarter": "2019Q1"}).success
            time.sleep(0.6)  # the last poll after the run ends
    steps = [line for line in said if "GRPO step" in line]
    assert steps and all(line.startswith("  … slow_training 2019Q1: member 0: GRPO step ") for line in steps)
    assert steps[-1].split(" · ETA")[0].endswith("GRPO step 5/5 · reward +0.5 · MAE 0.2 pp")
    assert any(" · ETA 0:0" in line for line in steps[:-1])  # seconds left while steps remain; none once done
    assert len(said) == len(set(said))  # a line is printed once, however many polls see it


def test_eta_from_the_pace_since_the_first_step_seen_per_member_and_stage():
    clock = StepClock()
    assert clock.eta("member 0: GRPO step 2/10 · reward +0.1", now=100.0) == ""  # one sighting gives no pace yet
    assert clock.eta("member 0: GRPO step 4/10 · reward +0.1", now=110.0) == " · ETA 0:30"  # 5 s a step, 6 steps left
    assert clock.eta("member 1: GRPO step 1/10", now=111.0) == ""  # member 1 has its own clock
    assert clock.eta("member 0: SFT step 50/200 · loss 1.2", now=112.0) == ""
    assert clock.eta("2023Q1: 32 nco prompts × 8 samples", now=113.0) == ""
