"""Metrics' internal event: what a case's partition hands to the totals' partition.

Case events arrive keyed by case: their rule keeps the case's sheet and works out what the
event changes of the case's KPI contributions (`CaseChange`); the totals — the cells, and
per customer group the contact days and first contract — cross cases and customers, so
they have one writer: the partition of `metrics.step`'s constant key `totals`
(docs/services/metrics.md, "One writer per key").
"""

from typing import Literal

from pydantic import Field

from services.metrics.domain import CaseChange, CustomerMerge
from shared.events import Event

METRICS_STEP = "metrics.step"
"""Internal, keyed by the constant `totals`: a case's change, or a customer merge."""


class MetricsStep(Event):
    """A case's change of KPI contributions, or customers merged, for the totals."""

    event_type: Literal["metrics.step"] = Field(default=METRICS_STEP)
    change: CaseChange | None = None
    merge: CustomerMerge | None = None
