"""grpo_policy's run config is the knob table: the same names, defaults and meanings, and bad values refused by name."""

import dagster as dg
import pytest

from cecl_pipeline.defs.policy import PolicyConfig
from cecl_pipeline.grpo.knobs import KNOBS


def test_the_asset_config_has_every_knob_with_its_default_and_meaning():
    fields = PolicyConfig.model_fields
    assert list(fields) == [k.name for k in KNOBS]
    for knob in KNOBS:
        assert fields[knob.name].default == knob.default and fields[knob.name].description.startswith(knob.meaning)


def test_the_launchpad_shows_each_knob_described():
    schema = PolicyConfig.to_config_schema().as_field().config_type.fields
    assert schema["learning_rate"].description.startswith("peak GRPO learning rate")


def test_a_value_of_the_wrong_type_is_refused_by_dagster_naming_the_knob():
    from cecl_pipeline.definitions import defs

    job = defs.resolve_job_def("quarterly_retrain")
    with pytest.raises(dg.DagsterInvalidConfigError, match="steps"):
        dg.validate_run_config(job, {"ops": {"grpo_policy": {"config": {"steps": "many"}}}})
    assert dg.validate_run_config(job, {"ops": {"grpo_policy": {"config": {"steps": 3}}}})
