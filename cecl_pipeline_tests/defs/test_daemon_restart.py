"""Restarting `dagster dev` (and so its daemon) keeps the schedule and sensor running and the sensor's cursor."""

import shutil

import dagster as dg
import pytest

from cecl_pipeline_tests.defs.dagster_dev import call, new_home, repository_selector, running_dagster_dev, wait_for

START_SCHEDULE = """mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {
  __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }"""
START_SENSOR = """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) {
  __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }"""
SCHEDULE_STATE = """query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) { ... on Schedule { scheduleState { status } } } }"""
SENSOR_STATE = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { sensorState {
  status typeSpecificData { ... on SensorData { lastCursor } } } } } }"""


def drop_file_runs(home, name: str) -> int:
    """How many runs the sensor requested for drop file ``name``."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return len(instance.get_run_records(dg.RunsFilter(tags={"cecl/drop_file": name})))


def sensor_cursor(port: int, sensor: dict) -> str:
    return call(port, SENSOR_STATE, s=sensor)["sensorOrError"]["sensorState"]["typeSpecificData"]["lastCursor"] or ""


@pytest.mark.slow
def test_a_daemon_restart_keeps_schedule_and_sensor_state(synthetic_layout, tmp_path):
    raw = synthetic_layout.raw_nco_dir
    held = tmp_path / "held-back"
    held.mkdir()
    for drop_file in raw.iterdir():  # the sensor starts with one file to see; 2019Q4 arrives after the restart
        if drop_file.name != "2019Q3.csv":
            shutil.move(drop_file, held / drop_file.name)
    home = new_home(tmp_path / "dagster_home")
    log = tmp_path / "dagster-dev.log"

    with running_dagster_dev(home, log) as port:
        repository = repository_selector(port)
        schedule = {**repository, "scheduleName": "quarterly_retrain_schedule"}
        sensor = {**repository, "sensorName": "new_drop_file_sensor"}
        assert call(port, START_SCHEDULE, s=schedule)["startSchedule"]["__typename"] == "ScheduleStateResult"
        assert call(port, START_SENSOR, s=sensor)["startSensor"]["__typename"] == "Sensor"
        wait_for(lambda: str(drop_file_runs(home, "2019Q3.csv")), {"1"}, seconds=180)
        # The daemon submits a tick's runs before it stores the tick's cursor.
        wait_for(lambda: str("2019Q3.csv" in sensor_cursor(port, sensor)), {"True"}, seconds=120)
        cursor = sensor_cursor(port, sensor)

    with running_dagster_dev(home, log) as port:
        assert call(port, SCHEDULE_STATE, s=schedule)["scheduleOrError"]["scheduleState"]["status"] == "RUNNING"
        state = call(port, SENSOR_STATE, s=sensor)["sensorOrError"]["sensorState"]
        assert state["status"] == "RUNNING" and state["typeSpecificData"]["lastCursor"] == cursor
        shutil.move(held / "2019Q4.csv", raw / "2019Q4.csv")
        wait_for(lambda: str(drop_file_runs(home, "2019Q4.csv")), {"1"}, seconds=240)
    assert drop_file_runs(home, "2019Q3.csv") == 1  # the restarted daemon did not request the file it had seen again
