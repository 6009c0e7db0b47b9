"""The contract every registry entry keeps, whatever its slot (built-in or a third party's):
`lrtune.testing.PluginContract`, the class plugin authors join, run here over each slot's
``names()``, so a new built-in entry is tested by being registered.

Slot-specific behaviour (a schedule's closed form, an optimizer's update, a gate's effect, a
rule's state) is tested beside each slot in tests/policies and tests/populations; that the
contract passes for an installed third-party plugin and fails for a broken one is tested in
tests/registry/test_testing_contract.py.
"""

from __future__ import annotations

import pytest

from lrtune.registry import SLOTS
from lrtune.testing import PluginContract

ENTRIES = [(slot, name) for slot, registry in SLOTS.items() for name in registry.names()]


def test_every_slot_has_entries() -> None:
    assert all(len(registry) > 0 for registry in SLOTS.values()), {
        slot: len(registry) for slot, registry in SLOTS.items()
    }


class TestBuiltinEntry(PluginContract):
    """The plugin-author contract, over every built-in entry of every slot."""

    @pytest.fixture(params=ENTRIES, ids=[f"{slot}:{name}" for slot, name in ENTRIES])
    def plugin(self, request: pytest.FixtureRequest) -> tuple[str, str]:
        """Each registered ``(slot, name)`` in turn."""
        entry: tuple[str, str] = request.param
        return entry
