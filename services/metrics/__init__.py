"""Metrics: every KPI of the care process, exact and replayable, streamed to BI tools."""
