"""Running a service module inside a benchmark wrapper (bench.profiled, traced, trimmed,
stalls)."""

import runpy
import sys

from bench.stalls import install_from_env


def run_service(service: str) -> None:
    """Run `python -m services.<service>` in this process, as its own command would."""
    install_from_env()  # with `bench --stalls`: the event loop's stalls are written down
    sys.argv = [f"services.{service}"]
    runpy.run_module(f"services.{service}", run_name="__main__", alter_sys=True)
