"""Running a service module inside a benchmark wrapper (bench.profiled, traced, trimmed)."""

import runpy
import sys


def run_service(service: str) -> None:
    """Run `python -m services.<service>` in this process, as its own command would."""
    sys.argv = [f"services.{service}"]
    runpy.run_module(f"services.{service}", run_name="__main__", alter_sys=True)
