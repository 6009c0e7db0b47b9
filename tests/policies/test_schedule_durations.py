"""Schedule durations shorter than one training iteration are found (and only durations)."""

from __future__ import annotations

from lrtune.policies.schedules import short_durations
from lrtune.registry import schedules


def test_every_duration_parameter_is_in_env_steps() -> None:
    """The marked parameters are the schedules' durations: warm-up, decay interval, cycle."""
    marked = {
        (name, key)
        for name in schedules.names()
        for key, info in schedules.get(name).params_model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("duration")
    }
    assert {
        ("step", "step_size"),
        ("warmup", "steps"),
        ("cosine_restarts", "t_0"),
        ("cyclic", "step_size_up"),
        ("cyclic", "step_size_down"),
    } <= marked
    assert ("exponential", "decay_steps") not in marked  # a rate, not a duration


def test_short_durations_are_named_with_where_they_are() -> None:
    assert short_durations("step", {"step_size": 1000, "gamma": 0.5}, 2048) == [
        "schedule.step_size = 1000"
    ]
    assert short_durations("step", {"step_size": 4096}, 2048) == []
    nested = {"steps": 100_000, "then": {"name": "step", "params": {"step_size": 512}}}
    assert short_durations("warmup", nested, 2048, "space.schedule.warmup") == [
        "space.schedule.warmup.then.step_size = 512"
    ]
    # A range (a dimension of a space) and an unknown name say nothing.
    ranged = {"steps": {"distribution": "int", "low": 10, "high": 100}}
    assert short_durations("warmup", ranged, 2048) == []
    assert short_durations("no_such_schedule", {"steps": 1}, 2048) == []
    assert short_durations("exponential", {"decay_steps": 1}, 2048) == []
