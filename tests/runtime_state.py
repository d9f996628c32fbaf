"""What a service on the stateful runtime has stored, as a restarted owner restores it."""

from dataclasses import dataclass, field
from typing import Any

from shared.runtime.storage import ChangeStore


@dataclass
class Stored:
    """Every partition's stored values (encoded) and pending timers, merged."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    timers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def pending(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """The pending timers whose id starts with `prefix`."""
        return {i: t for i, t in self.timers.items() if i.startswith(prefix)}


async def stored_state(db: Any, partitions: int, *, name: str = "state") -> Stored:
    """Restore each of the runtime's `partitions` from `db` and merge them."""
    store, stored = ChangeStore(db, name), Stored()
    for partition in range(partitions):
        restored = await store.restore(partition)
        stored.values.update({key: value for key, (value, _) in restored.values.items()})
        stored.timers.update(restored.timers)
    return stored
