"""The read API: GET /kpis as JSON, or CSV for spreadsheets."""

import csv
import io
from collections.abc import Iterable
from datetime import date
from typing import Any
from urllib.parse import parse_qs

import orjson
from faststream.asgi import AsgiResponse, get

from services.metrics.board import ROW_FIELDS, KpiBoard
from services.metrics.kpis import KPIS
from services.metrics.windows import Window
from shared.service import Route, json_response

CSV_COLUMNS = ROW_FIELDS


class BadQuery(ValueError):
    """A query parameter the API cannot use."""


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _day(params: dict[str, list[str]], name: str) -> date | None:
    value = _one(params, name)
    try:
        return date.fromisoformat(value) if value else None
    except ValueError as e:
        raise BadQuery(f"{name}: expected YYYY-MM-DD, got {value!r}") from e


def _choices(params: dict[str, list[str]], name: str, allowed: Iterable[str]) -> set[str] | None:
    raw = [v for value in params.get(name, []) for v in value.split(",") if v]
    unknown = set(raw) - set(allowed)
    if unknown:
        raise BadQuery(f"{name}: unknown {sorted(unknown)}, expected one of {sorted(allowed)}")
    return set(raw) or None


def select_kpis(
    rows: Iterable[dict[str, Any]], params: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """KPI rows matching kpi, window, from/to (period start), dimension and value filters."""
    kpis = _choices(params, "kpi", KPIS)
    windows = _choices(params, "window", [w.value for w in Window])
    dimensions = _choices(params, "dimension", ["all", "channel", "legal_field", "lawyer"])
    values = {v for value in params.get("value", []) for v in value.split(",") if v} or None
    start, end = _day(params, "from"), _day(params, "to")
    selected = []
    for row in rows:
        if kpis and row["kpi"] not in kpis:
            continue
        if windows and row["window"] not in windows:
            continue
        if dimensions and row["dimension"] not in dimensions:
            continue
        if values and row["dimension_value"] not in values:
            continue
        period = date.fromisoformat(row["period_start"]) if row["period_start"] else None
        if period is not None and ((start and period < start) or (end and period > end)):
            continue
        selected.append(row)
    selected.sort(key=_row_order)
    return selected


def _row_order(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[c] or "") for c in CSV_COLUMNS[:5])


def _csv_cell(row: dict[str, Any], column: str) -> Any:
    if column == "extra":
        return orjson.dumps(row[column]).decode()
    return "" if row[column] is None else row[column]


def rows_as_csv(rows: list[dict[str, Any]]) -> bytes:
    """KPI rows as CSV with a header line (extra figures as a JSON object)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(row, c) for c in CSV_COLUMNS])
    return out.getvalue().encode()


def _wants_csv(scope: Any, params: dict[str, list[str]]) -> bool:
    if _one(params, "format") == "csv":
        return True
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    return b"text/csv" in accept


def kpi_routes(board: KpiBoard) -> list[Route]:
    """The /kpis endpoint (the latest values on metrics.kpi)."""

    @get(description="KPI values: ?kpi=&window=&from=&to=&dimension=&value=&format=csv")
    async def kpis(scope: Any) -> AsgiResponse:
        params = {
            k.decode(): [v.decode() for v in vs]
            for k, vs in parse_qs(scope.get("query_string", b"")).items()
        }
        try:
            rows = select_kpis(board.rows.values(), params)
        except BadQuery as e:
            return json_response({"error": str(e)}, 400)
        if _wants_csv(scope, params):
            return AsgiResponse(
                rows_as_csv(rows), 200, headers={"content-type": "text/csv; charset=utf-8"}
            )
        return json_response({"count": len(rows), "kpis": rows})

    return [("/kpis", kpis)]
