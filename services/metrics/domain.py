"""Metrics' rules: pure KPI arithmetic, no I/O."""


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero."""
    return numerator / denominator if denominator else None
