"""The quarter-end sensor's decisions, tick by tick, on a real instance holding the materializations it reads.

The materializations are recorded on the instance as the assets would record them (partition,
status and booking hashes in metadata); the daemon test in test_quarter_end_daemon.py runs the real
assets end to end.
"""

import dagster as dg
import pytest

from cecl_pipeline.definitions import defs
from cecl_pipeline.defs.automation_config import AUTOMATION_RUN_CONFIG
from cecl_pipeline.defs.booking_files import booking_inputs
from cecl_pipeline.defs.quarter_end_sensor import BOOKED_QUARTER_TAG, quarter_end_sensor
from cecl_pipeline.defs.resources import DataPaths
from cecl_pipeline.quarters import to_partition_key


def sense(instance):
    context = dg.build_sensor_context(instance=instance, resources={"paths": DataPaths()}, repository_def=defs.get_repository_def())
    return quarter_end_sensor.evaluate_tick(context)


def record(instance, asset: str, quarter: str, **metadata) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=to_partition_key(quarter), metadata=metadata))


def the_request(instance) -> dg.RunRequest:
    result = sense(instance)
    assert len(result.run_requests) == 1, result.skip_message
    return result.run_requests[0]


def skipped(instance) -> str:
    result = sense(instance)
    assert not result.run_requests, [r.run_key for r in result.run_requests]
    return result.skip_message


def write_portfolio(layout, quarter: str, cost: float = 1000.0) -> None:
    layout.portfolio_csv(quarter).parent.mkdir(parents=True, exist_ok=True)
    layout.portfolio_csv(quarter).write_text(f"entity_id,segment,amortized_cost,remaining_life_quarters\nb1,cards,{cost},6\n")


def test_an_accepted_panel_becomes_a_policy_then_a_forecast_then_an_allowance(layout, instance, tmp_path, monkeypatch):
    knobs = tmp_path / "automation.yaml"
    knobs.write_text("ops:\n  grpo_policy:\n    config: {steps: 3}\n  forward_forecasts:\n    config: {samples: 2}\n")
    monkeypatch.setenv(AUTOMATION_RUN_CONFIG, str(knobs))
    assert skipped(instance) == "no accepted nco_panel yet"

    record(instance, "nco_panel", "2019Q3", status="accepted")
    assert "waiting for nco_prompts 2019Q3" in skipped(instance)
    record(instance, "nco_prompts", "2019Q3")

    policy = the_request(instance)
    assert (policy.job_name, policy.partition_key, policy.tags[BOOKED_QUARTER_TAG]) == ("train_policy", "2019-10-01", "2019Q3")
    assert policy.run_config == {"ops": {"grpo_policy": {"config": {"steps": 3}}}}
    record(instance, "grpo_policy", "2019Q4")

    forecast = the_request(instance)  # no portfolio yet: the forecast and the scores only
    assert (forecast.job_name, forecast.partition_key) == ("quarter_end", "2019-07-01")
    assert sorted(k.to_user_string() for k in forecast.asset_selection) == ["forward_forecasts", "forward_scores"]
    assert forecast.run_config == {"ops": {"forward_forecasts": {"config": {"samples": 2}}}}
    record(instance, "forward_forecasts", "2019Q3")
    assert f"waits for its portfolio at {layout.portfolio_csv('2019Q3')}" in skipped(instance)

    write_portfolio(layout, "2019Q3")
    booking = the_request(instance)
    assert booking.job_name == "quarter_end" and [k.to_user_string() for k in booking.asset_selection] == ["cecl_allowance"]
    record(instance, "cecl_allowance", "2019Q3", **booking_inputs(layout, "2019Q3"))
    assert skipped(instance).startswith("2019Q3 is booked")

    write_portfolio(layout, "2019Q3", cost=2000.0)  # a corrected portfolio is booked again, under a new run key
    rebooking = the_request(instance)
    assert rebooking.asset_selection == booking.asset_selection and rebooking.run_key != booking.run_key


def test_a_newer_policy_remakes_the_forecast_with_the_allowance_when_the_portfolio_is_there(layout, instance):
    for asset, quarter in (("nco_panel", "2019Q3"), ("nco_prompts", "2019Q3"), ("grpo_policy", "2019Q4"), ("forward_forecasts", "2019Q3")):
        record(instance, asset, quarter, status="accepted")
    write_portfolio(layout, "2019Q3")
    record(instance, "cecl_allowance", "2019Q3", **booking_inputs(layout, "2019Q3"))
    assert skipped(instance).startswith("2019Q3 is booked")

    record(instance, "nco_prompts", "2019Q3")  # rebuilt prompts: the policy, then everything after it, again
    assert the_request(instance).job_name == "train_policy"
    record(instance, "grpo_policy", "2019Q4")
    again = the_request(instance)
    assert again.job_name == "quarter_end"
    assert sorted(k.to_user_string() for k in again.asset_selection) == ["cecl_allowance", "forward_forecasts", "forward_scores"]


def test_a_rejected_newer_quarter_leaves_the_booking_on_the_newest_accepted_one(layout, instance):
    record(instance, "nco_panel", "2019Q2", status="accepted")
    record(instance, "nco_panel", "2019Q3", status="rejected: failed blocking checks; the accepted file was left unchanged")
    record(instance, "nco_prompts", "2019Q2")
    request = the_request(instance)
    assert request.partition_key == "2019-07-01" and request.tags[BOOKED_QUARTER_TAG] == "2019Q2"

    record(instance, "nco_panel", "2019Q3", status="accepted")  # the corrected drop file is accepted
    assert "waiting for nco_prompts 2019Q3" in skipped(instance)


def test_it_waits_while_a_run_writes_the_chain(layout, instance):
    record(instance, "nco_panel", "2019Q3", status="accepted")
    record(instance, "nco_prompts", "2019Q3")
    run = instance.create_run_for_job(defs.resolve_job_def("ingest_quarter"), status=dg.DagsterRunStatus.STARTED,
                                      tags={"dagster/partition": "2019-10-01"})
    assert f"run {run.run_id[:8]} (ingest_quarter)" in skipped(instance)
    instance.report_run_failed(run)
    assert the_request(instance).job_name == "train_policy"
    training = instance.create_run_for_job(defs.resolve_job_def("train_policy"), status=dg.DagsterRunStatus.STARTING)
    assert f"run {training.run_id[:8]} (train_policy)" in skipped(instance)  # never the same step twice while it runs


def test_a_broken_automation_config_names_its_file(layout, instance, tmp_path, monkeypatch):
    record(instance, "nco_panel", "2019Q3", status="accepted")
    record(instance, "nco_prompts", "2019Q3")
    knobs = tmp_path / "automation.yaml"
    knobs.write_text("grpo_policy:\n  config: {steps: 3}\n")  # the ops: level is missing
    monkeypatch.setenv(AUTOMATION_RUN_CONFIG, str(knobs))
    with pytest.raises(Exception, match="expected a run config with one top-level key, ops") as failure:
        sense(instance)
    assert str(knobs) in str(failure.value)
    knobs.write_text("ops: [unclosed\n")
    with pytest.raises(Exception, match="not valid YAML"):
        sense(instance)
