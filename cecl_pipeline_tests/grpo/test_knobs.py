"""Every training knob is defined once: its default is the trainer's, and a value set on it reaches the trainer."""

import dataclasses

import pytest

from cecl_pipeline.grpo import knobs
from cecl_pipeline.grpo.policy_store import PolicyStore
from cecl_pipeline.grpo.training_job import PolicyJob
from cecl_pipeline.llm.checkpoint import MANIFEST


def field_default(cls, path: str):
    """The default of the dataclass field at dotted ``path`` under ``cls`` (KeyError when there is no such field)."""
    head, _, rest = path.partition(".")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    field = fields[head]
    if rest:
        return field_default(type(field.default_factory()), rest)
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def job_value(job: PolicyJob, path: str):
    value = job
    for part in path.split("."):
        value = getattr(value, part)
    return value


def another_value(knob: knobs.Knob):
    """A valid value other than the default."""
    if knob.choices:
        return next(c for c in knob.choices if c != knob.default)
    if knob.kind is bool:
        return not knob.default
    if knob.name == "ppo_minibatch":
        return knob.default // 2  # still divides groups_per_batch × group_size
    value = knob.default * 2 or knob.kind(1)
    return knob.default - 1 if knob.maximum is not None and value > knob.maximum else value


@pytest.mark.parametrize("knob", knobs.KNOBS, ids=lambda k: k.name)
def test_every_knob_is_a_trainer_field_with_the_same_default(knob):
    assert field_default(PolicyJob, knob.field) == knob.default


@pytest.mark.parametrize("knob", knobs.KNOBS, ids=lambda k: k.name)
def test_a_value_set_on_a_knob_reaches_its_field_of_the_job(knob, tmp_path):
    (tmp_path / "2019Q4.parquet").touch()
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / MANIFEST).touch()
    value = another_value(knob)
    job = PolicyJob.for_quarter("2020Q1", {knob.name: value}, lambda q: tmp_path / f"{q}.parquet", tmp_path / "base",
                                PolicyStore(tmp_path / "store"), tmp_path / "wandb")
    assert job_value(job, knob.field) == value != knob.default
    assert PolicyJob.from_dict(job.to_dict()) == job  # what the training process receives is the same job


def test_bad_values_and_names_are_refused_naming_the_knob_and_what_it_accepts():
    with pytest.raises(knobs.KnobError, match=r"^steps: expected an integer ≥ 1, got 0$"):
        knobs.resolve({"steps": 0})
    with pytest.raises(knobs.KnobError, match=r"^beta: expected a number ≥ 0, got 'high'$"):
        knobs.resolve({"beta": "high"})
    with pytest.raises(knobs.KnobError, match=r"^unknown knob 'stepz'"):
        knobs.resolve({"stepz": 3})
    assert knobs.knob("learning_rate").parse(" 3e-4 ") == 3e-4 and knobs.knob("temperature").check(1) == 1.0


def test_help_lists_every_knob_with_its_default():
    lines = knobs.help_text().splitlines()
    assert len(lines) == len(knobs.KNOBS)
    assert any(line.split()[0] == "learning_rate" and "default 0.0001" in line for line in lines)
