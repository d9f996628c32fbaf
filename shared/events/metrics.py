"""The KPI values metrics streams to BI tools on the compacted metrics.kpi topic."""

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, Field

from shared import topics

from .base import Event
from .enums import KpiDimension, KpiUnit, KpiWindow


class KpiUpdated(Event):
    """One KPI's value for one window, period and dimension value (no personal data)."""

    event_type: Literal["metrics.kpi"] = Field(
        default=topics.METRICS_KPI, description="The event type, equal to its topic."
    )
    kpi: str = Field(description="KPI id (SPEC §6).", examples=["nps"])
    window: KpiWindow = Field(description="day, week, month or all.")
    period_start: date | None = Field(
        description="First day of the period; null for all.", examples=["2026-11-23"]
    )
    dimension: KpiDimension = Field(description="all, channel, legal_field or lawyer.")
    dimension_value: str = Field(
        description="Value of the dimension; 'all' for all.", examples=["zalo"]
    )
    value: float | None = Field(
        description="The KPI value; null when undefined (0/0).", examples=[42.5]
    )
    unit: KpiUnit = Field(
        description=(
            "What `value` measures: percent (75 = 75 %; NPS -100..100), ratio (0.75 = 75 %), "
            "seconds, count, vnd, or score (mean answer: CSAT 1-5, CES 1-7). One unit per KPI."
        ),
        examples=["percent"],
    )
    numerator: float = Field(description="Numerator, for re-aggregation.")
    denominator: float = Field(description="Denominator, for re-aggregation.")
    count: int = Field(ge=0, description="Events that contributed.")
    extra: dict[str, float] = Field(
        default_factory=dict, description="Extra figures (p50, p90, buckets)."
    )
    updated_at: AwareDatetime = Field(description="When metrics computed this value.")

    def partition_key(self) -> bytes:
        """Compaction key: kpi|window|period_start|dimension|value."""
        period = self.period_start.isoformat() if self.period_start else "all"
        return "|".join(
            (self.kpi, self.window, period, self.dimension, self.dimension_value)
        ).encode()
