"""The one table: rows from a run's results, rendered as aligned text."""

from typing import Any

from bench.alone import INPUTS


def _row(section: str, name: str, value: float | None, unit: str, base: float | None) -> dict:
    ratio = value / base if value is not None and base and unit.endswith("/s") else None
    return {"section": section, "name": name, "value": value, "unit": unit, "ratio": ratio}


def rows_from(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten a run's results into table rows (ratios against the run's own baseline)."""
    rows: list[dict[str, Any]] = []
    base = results.get("baseline", {}).get("per_second")
    if base:
        rows.append(_row("baseline", "raw aiokafka pass-through", base, "events/s", base))
    timing = results.get("classifier")
    if timing:
        for key, label in (
            ("model_us", "intake classifier: one message, model"),
            ("classify_us", "intake classifier: one message, model + lexicon flags"),
        ):
            rows.append(_row("classifier", label, timing[key], "µs", base))
    for one in results.get("alone", []):
        note = "" if one["drained"] else f" ({one['handled']}/{one['events']} in cap)"
        rows.append(_row("alone", f"{one['service']}{note}", one["per_second"], "events/s", base))
        if "primary_per_second" in one:
            primary = INPUTS[one["service"]][0]
            rows.append(
                _row("alone", f"  of which {primary}", one["primary_per_second"], "events/s", base)
            )
        name = one["service"]
        for key, label, unit in (
            ("cpu_us_per_event", f"  {name} CPU per input event", "µs"),
            ("round_trips_per_record", f"  {name} database round trips per record", "trips"),
            ("restore_ms", f"  {name} restore at start after the drain", "ms"),
        ):
            if one.get(key) is not None:
                rows.append(_row("alone", label, one[key], unit, base))
    pipe = results.get("pipeline", {})
    sat = pipe.get("saturation")
    if sat:
        done = "" if sat["complete"] else f" ({sat['assigned']}/{sat['contacts']})"
        rows.append(
            _row(
                "pipeline",
                f"contact → case.assigned{done}",
                sat["to_assigned_per_s"],
                "contacts/s",
                base,
            )
        )
        rows.append(
            _row(
                "pipeline", "contact → tft KPI on metrics.kpi", sat["kpi_per_s"], "contacts/s", base
            )
        )
        rows.extend(_cpu_rows("pipeline", "to case.assigned:", sat.get("cpu"), base))
        rows.extend(_cpu_rows("pipeline", "to the tft KPI:", sat.get("cpu_to_kpi"), base))
    rows.extend(_gateway_rows(results.get("gateway"), base))
    rows.extend(_desk_rows(results.get("desk"), base))
    for lat in pipe.get("latency", []):
        label = (
            f"{lat['fraction']:.0%} sat ({lat['rate']:.1f}/s, {lat['assigned']}/{lat['contacts']})"
        )
        for q in ("p50", "p95", "p99"):
            rows.append(_row("latency", f"{label} {q}", lat[f"{q}_ms"], "ms", base))
        for q in ("p50", "p99"):
            ms = lat.get(f"classified_{q}_ms")
            if ms is not None:
                rows.append(_row("latency", f"{label} to case.classified {q}", ms, "ms", base))
        rows.extend(_cpu_rows("latency", label, lat.get("cpu"), base))
        over = f"over {lat.get('stalls_over_ms', 0):g} ms"
        for svc, seen in (lat.get("stalls") or {}).items():
            rows.append(
                _row("latency", f"{label} {svc} loop stalls {over}", seen["count"], "stalls", base)
            )
            rows.append(
                _row(
                    "latency", f"{label} {svc} loop stalled, in all", seen["stalled_ms"], "ms", base
                )
            )
            rows.append(
                _row(
                    "latency",
                    f"{label} {svc} loop stalled: of which running",
                    seen["running_ms"],
                    "ms",
                    base,
                )
            )
        for svc, phases in (lat.get("phases") or {}).items():
            for phase, ms in phases.items():
                rows.append(_row("latency", f"{label} {svc} cycle: {phase}", ms, "ms", base))
    for snap in [pipe.get("start"), *pipe.get("growth", [])]:
        if not snap:
            continue
        at = f"@{snap['events_handled']} events"
        if snap.get("contacts"):
            at += f" ({snap['contacts']} contacts)"
        for svc, rss in snap["rss_mib"].items():
            rows.append(_row("growth", f"{svc} RSS {at}", rss, "MiB", base))
        for svc, rss in (snap.get("rss_given_back_mib") or {}).items():
            rows.append(_row("growth", f"{svc} RSS after giving heap back {at}", rss, "MiB", base))
        for svc, heap in (snap.get("heap_mib") or {}).items():
            for part, mib in heap.items():
                what = part.replace("_", " ")
                rows.append(_row("growth", f"{svc} heap: {what} {at}", mib, "MiB", base))
        for svc, docs in snap["documents"].items():
            rows.append(_row("growth", f"{svc} documents {at}", docs, "docs", base))
        for svc, keys in (snap.get("keys_in_memory") or {}).items():
            if keys is not None:
                rows.append(_row("growth", f"{svc} keys in memory {at}", keys, "keys", base))
        for field, what, unit in (
            ("keys_reloaded", "keys reloaded", "keys"),
            ("timers_pending", "timers pending", "timers"),
            ("ledger_ids", "ledger", "ids"),
        ):
            for svc, n in (snap.get(field) or {}).items():
                if n is not None:
                    rows.append(_row("growth", f"{svc} {what} {at}", n, unit, base))
    for svc, ms in (pipe.get("restore_after_growth") or {}).items():
        if ms is not None:
            rows.append(_row("growth", f"{svc} restore at start after growth", ms, "ms", base))
    for one in results.get("alone", []):
        at = f"@{one['handled']} events alone"
        rows.append(_row("growth", f"{one['service']} RSS {at}", one["rss_mib"], "MiB", base))
        rows.append(
            _row("growth", f"{one['service']} documents {at}", one["documents"], "docs", base)
        )
    return rows


def _cpu_rows(
    section: str, label: str, shares: dict[str, float] | None, base: float | None
) -> list[dict[str, Any]]:
    """Each process group's share of a core over a phase (bench/cpu.py)."""
    return [
        _row(section, f"{label} CPU, {group}", share, "% of a core", base)
        for group, share in (shares or {}).items()
    ]


def _gateway_rows(gateway: dict[str, Any] | None, base: float | None) -> list[dict[str, Any]]:
    """Webhook → contact.received: requests/s (a ratio of the baseline) and the p99."""
    if not gateway:
        return []
    arrived = (
        ""
        if gateway["contacts"] == gateway["requests"]
        else f" ({gateway['contacts']}/{gateway['requests']} arrived)"
    )
    name = f"webhook → contact.received{arrived}"
    return [
        _row("gateway", name, gateway["requests_per_s"], "requests/s", base),
        _row("gateway", f"{name} p99", gateway["p99_ms"], "ms", base),
    ]


def _desk_rows(desk: dict[str, Any] | None, base: float | None) -> list[dict[str, Any]]:
    """The care desk's pages: p95 of each with `cases` cases in its read model."""
    if not desk:
        return []
    return [
        _row("desk", f"{page} page p95 @{desk['cases']} cases", desk[page]["p95_ms"], "ms", base)
        for page in ("queue", "case", "search_phone")
        if page in desk
    ]


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 1 or value == 0 else f"{value:.4f}"


def render_table(rows: list[dict[str, Any]]) -> str:
    """Aligned text: section, measure, value, unit, ratio to baseline."""
    header = ("section", "measure", "value", "unit", "× baseline")
    lines = [
        (
            r["section"],
            r["name"],
            _fmt(r["value"]),
            r["unit"],
            f"{r['ratio']:.4f}" if r["ratio"] is not None else "",
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(5)]
    out = []
    for i, line in enumerate([header, *lines]):
        out.append(
            "  ".join(
                str(c).rjust(w) if j in (2, 4) else str(c).ljust(w)
                for j, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
