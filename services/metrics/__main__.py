"""python -m services.metrics [rebuild | kpi]: run the service, replay the log, or print KPIs.

rebuild exits 0 when the rebuilt KPIs equal the live ones, 1 when some differ, 3 when it
refuses to start because the log lost its head (a topic's earliest offset is not 0).
"""

import asyncio
import sys
from zoneinfo import ZoneInfo

from services.metrics.app import MetricsSettings, create_app
from services.metrics.rebuild import LogTrimmed, rebuild
from services.metrics.report import print_kpis
from shared.service import serve


def main(argv: list[str]) -> int:
    """Dispatch the command line; return the exit status."""
    settings = MetricsSettings()
    command = argv[0] if argv else "serve"
    if command == "serve":
        serve(create_app(settings), settings)
        return 0
    if command == "rebuild":
        try:
            report = asyncio.run(rebuild(settings))
        except LogTrimmed as refused:
            print(refused, file=sys.stderr)
            return 3
        print(f"replayed {report.events} events ({report.invalid} invalid, skipped)")
        print(f"rebuilt {report.kpis} KPI values; {len(report.differences)} differ from live")
        for diff in report.differences[:50]:
            print(f"  {diff.id}: live={diff.live} rebuilt={diff.rebuilt}")
        return 1 if report.differences else 0
    if command == "kpi":
        host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "") else settings.http_host
        print_kpis(f"http://{host}:{settings.http_port}", ZoneInfo(settings.timezone))
        return 0
    print("usage: python -m services.metrics [serve | rebuild | kpi]", file=sys.stderr)
    return 2


sys.exit(main(sys.argv[1:]))
