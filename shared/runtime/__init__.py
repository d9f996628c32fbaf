"""The stateful runtime: rules over per-partition state, persisted per batch (see engine)."""

from shared.runtime.context import Context, Outgoing
from shared.runtime.engine import Runtime
from shared.runtime.state import View
from shared.runtime.timers import Timer

__all__ = ["Context", "Outgoing", "Runtime", "Timer", "View"]
