"""The contract every registry entry keeps, whatever its slot (built-in or a third party's):
parametrised over each registry's ``names()``, so a new entry is tested by being registered.

Slot-specific behaviour (a schedule's closed form, an optimizer's update, a gate's effect, a
rule's state) is tested beside each slot in tests/policies and tests/populations.
"""

from __future__ import annotations

from typing import Any

import pytest

from lrtune.registry import SLOTS, PluginParamsError

ENTRIES = [
    pytest.param(slot, name, id=f"{slot}:{name}")
    for slot, registry in SLOTS.items()
    for name in registry.names()
]


def _bound_violations(schema: dict[str, Any]) -> list[tuple[str, Any]]:
    """(field, a value beyond one of its numeric bounds) for every bound in the JSON schema."""
    out: list[tuple[str, Any]] = []
    for name, prop in schema.get("properties", {}).items():
        for variant in [prop, *prop.get("anyOf", [])]:
            step = 1 if variant.get("type") == "integer" else 1.0
            if "minimum" in variant:
                out.append((name, variant["minimum"] - step - abs(variant["minimum"])))
            if "maximum" in variant:
                out.append((name, variant["maximum"] + step + abs(variant["maximum"])))
            if "exclusiveMinimum" in variant:
                out.append((name, variant["exclusiveMinimum"]))
            if "exclusiveMaximum" in variant:
                out.append((name, variant["exclusiveMaximum"]))
    return out


BOUND_CASES = [
    pytest.param(slot, name, field, value, id=f"{slot}:{name}-{field}={value}")
    for slot, registry in SLOTS.items()
    for name in registry.names()
    for field, value in _bound_violations(registry.get(name).params_model.model_json_schema())
]


def test_every_slot_has_entries() -> None:
    assert all(len(registry) > 0 for registry in SLOTS.values()), {
        slot: len(registry) for slot, registry in SLOTS.items()
    }


@pytest.mark.parametrize(("slot", "name"), ENTRIES)
def test_entry_is_described_and_its_example_and_defaults_validate(slot: str, name: str) -> None:
    entry = SLOTS[slot].get(name)
    assert entry.description.strip(), f"{slot}:{name} has no description"
    for field, info in entry.params_model.model_fields.items():
        assert info.description, f"{slot}:{name}.{field} has no description"
    entry.validate_params(entry.example)
    if not any(info.is_required() for info in entry.params_model.model_fields.values()):
        entry.validate_params({})


@pytest.mark.parametrize(("slot", "name"), ENTRIES)
def test_an_unknown_parameter_is_refused_by_name(slot: str, name: str) -> None:
    entry = SLOTS[slot].get(name)
    with pytest.raises(PluginParamsError, match="no_such_param"):
        entry.validate_params({**entry.example, "no_such_param": 1})


@pytest.mark.parametrize(("slot", "name", "field", "value"), BOUND_CASES)
def test_a_value_beyond_a_bound_is_refused_naming_the_field(
    slot: str, name: str, field: str, value: Any
) -> None:
    entry = SLOTS[slot].get(name)
    with pytest.raises(PluginParamsError, match=field):
        entry.validate_params({**entry.example, field: value})
