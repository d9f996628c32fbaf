"""KPI cells: exact integer aggregates per (kpi, window, period, dimension) and their values.

Percentiles come from a mergeable log-bucket sketch (DDSketch-style, 1 % relative
accuracy): bucket counts add and subtract exactly, so retraction and replay stay exact and
memory is bounded by the number of buckets, not by the number of samples.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from services.metrics.domain import FRT_BUCKETS
from services.metrics.windows import Window
from shared.events import KpiUnit

SKETCH_ACCURACY = 0.01
_GAMMA = (1 + SKETCH_ACCURACY) / (1 - SKETCH_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_ZERO_BUCKET = -1

CellKey = tuple[str, Window, date | None, str, str]
"""(kpi, window, period_start, dimension, dimension_value)."""

COUNTS = frozenset(
    {"tft", "open_cases", "resolved_cases", "legal_aid_referrals", "revenue_vnd", "sla_breaches"}
)
PERCENTS = frozenset(
    {"nps", "csat", "complaint_rate", "crr", "sla_first_response_met", "sla_resolution_met"}
)
DURATIONS = frozenset({"frt", "frt_business", "atht", "ttr"})
RATIOS = frozenset(
    {"resolution_rate", "quote_conversion", "survey_response_rate", "reclassification_rate"}
)
MEANS = frozenset({"csat_mean", "ces"})
FRT_KPIS = frozenset({"frt", "frt_business"})
FRT_BUCKET_NAMES = (*(name for name, _ in FRT_BUCKETS), ">24h")
KPIS = tuple(sorted(COUNTS | PERCENTS | DURATIONS | RATIOS | MEANS))
"""Every KPI identifier on the wire (SPEC §6)."""
UNITS: dict[str, KpiUnit] = {
    **dict.fromkeys(PERCENTS, KpiUnit.PERCENT),
    **dict.fromkeys(RATIOS, KpiUnit.RATIO),
    **dict.fromkeys(DURATIONS, KpiUnit.SECONDS),
    **dict.fromkeys(COUNTS - {"revenue_vnd"}, KpiUnit.COUNT),
    "revenue_vnd": KpiUnit.VND,
    **dict.fromkeys(MEANS, KpiUnit.SCORE),
}
"""The unit of every KPI's value (metrics.kpi `unit`)."""


def sketch_bucket(ms: int) -> int:
    """The sketch bucket of a duration in milliseconds."""
    return _ZERO_BUCKET if ms <= 0 else math.ceil(math.log(ms) / _LOG_GAMMA)


def bucket_value(bucket: int) -> float:
    """A bucket's representative duration in milliseconds (within 1 % of every member)."""
    return 0.0 if bucket == _ZERO_BUCKET else 2 * _GAMMA**bucket / (_GAMMA + 1)


def quantile(sketch: Mapping[int, int], q: float) -> float | None:
    """Nearest-rank quantile `q` of the sketched durations, in milliseconds."""
    total = sum(sketch.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total - 1e-9))
    seen = 0
    for bucket in sorted(sketch):
        seen += sketch[bucket]
        if seen >= rank:
            return bucket_value(bucket)
    return bucket_value(max(sketch))


@dataclass(slots=True)
class CellDelta:
    """What one rule run adds to one cell, summed before the cell is touched: contributions
    that cancel (a case's facts retracted and added again under a dimension value that did
    not change) leave the cell as it is, unread and unwritten."""

    numerator: int = 0
    denominator: int = 0
    count: int = 0
    parts: dict[str, int] = field(default_factory=dict)
    sketch: dict[int, int] = field(default_factory=dict)

    def add(
        self,
        times: int,
        numerator: int,
        denominator: int,
        parts: tuple[tuple[str, int], ...],
        bucket: int | None,
    ) -> None:
        """Add a contribution `times` times (negative: retracted); `bucket`: its sample's
        sketch bucket."""
        self.numerator += times * numerator
        self.denominator += times * denominator
        self.count += times
        for name, n in parts:
            self.parts[name] = self.parts.get(name, 0) + times * n
        if bucket is not None:
            self.sketch[bucket] = self.sketch.get(bucket, 0) + times

    def is_zero(self) -> bool:
        """True when the contributions cancel out."""
        return not (
            self.numerator
            or self.denominator
            or self.count
            or any(self.parts.values())
            or any(self.sketch.values())
        )


def _merged(counts: dict[Any, int], delta: dict[Any, int]) -> dict[Any, int]:
    """`counts` with `delta` added (keys reaching 0 leave); `counts` itself if unchanged."""
    result = counts
    for key, n in delta.items():
        if n:
            if result is counts:
                result = dict(counts)
            value = result.get(key, 0) + n
            if value:
                result[key] = value
            else:
                del result[key]
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """Exact integer sums of one KPI in one period and dimension value.

    Immutable: `plus` returns the cell with a delta added, so the runtime keeps a cell as
    its stored value, never copied to be changed in place."""

    kind: Literal["cell"] = "cell"
    numerator: int = 0
    denominator: int = 0
    count: int = 0
    parts: dict[str, int] = field(default_factory=dict)
    sketch: dict[int, int] = field(default_factory=dict)

    def plus(self, delta: CellDelta) -> "Cell":
        """The cell with `delta` added."""
        return Cell(
            numerator=self.numerator + delta.numerator,
            denominator=self.denominator + delta.denominator,
            count=self.count + delta.count,
            parts=_merged(self.parts, delta.parts),
            sketch=_merged(self.sketch, delta.sketch),
        )

    def is_empty(self) -> bool:
        """True when nothing contributes to the cell any more."""
        return self.count == 0 and not self.numerator and not self.denominator and not self.parts


@dataclass(frozen=True)
class KpiValue:
    """A cell as BI tools read it: value, numerator, denominator, count and extra figures."""

    value: float | None
    numerator: float
    denominator: float
    count: int
    extra: dict[str, float]


def _div(a: float, b: float, scale: float = 1.0) -> float | None:
    return scale * a / b if b else None


def kpi_value(kpi: str, cell: Cell) -> KpiValue:
    """The KPI's value from its cell (durations in seconds, percentages 0–100)."""
    extra = {name: float(n) for name, n in sorted(cell.parts.items())}
    num, den = float(cell.numerator), float(cell.denominator)
    if kpi in COUNTS:
        return KpiValue(num, num, 1.0, cell.count, extra)
    if kpi in DURATIONS:
        seconds = num / 1000
        if kpi in FRT_KPIS:
            for name in FRT_BUCKET_NAMES:
                extra[f"share_{name}"] = extra.pop(name, 0.0) / den if den else 0.0
        for label, q in (("p50", 0.5), ("p90", 0.9)):
            ms = quantile(cell.sketch, q)
            if ms is not None:
                extra[label] = round(ms / 1000, 3)
        return KpiValue(_div(seconds, den), seconds, den, cell.count, extra)
    scale = 100.0 if kpi in PERCENTS else 1.0
    return KpiValue(_div(num, den, scale), num, den, cell.count, extra)


def cell_row(key: CellKey, cell: Cell) -> dict[str, Any]:
    """A cell as readers see it (SPEC §7 metrics.kpi fields, without the envelope)."""
    return kpi_row(key, kpi_value(key[0], cell))


def kpi_row(key: CellKey, value: KpiValue) -> dict[str, Any]:
    """A computed KPI value as readers see it."""
    kpi, window, start, dimension, dimension_value = key
    return {
        "kpi": kpi,
        "window": str(window),
        "period_start": start.isoformat() if start else None,
        "dimension": dimension,
        "dimension_value": dimension_value,
        "value": value.value,
        "unit": str(UNITS[kpi]),
        "numerator": value.numerator,
        "denominator": value.denominator,
        "count": value.count,
        "extra": value.extra,
    }
