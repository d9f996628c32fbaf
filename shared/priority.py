"""The process's CPU priority: the services off the way from a contact to its lawyer yield."""

import contextlib
import os
from pathlib import Path

import structlog

log = structlog.get_logger("lexcare.priority")
AUTOGROUP = Path("/proc/self/autogroup")


def take_priority(nice: int) -> None:
    """Run this process at niceness `nice` (never raises its priority).

    Linux with autogroup scheduling (`kernel.sched_autogroup_enabled`) shares the CPU
    between sessions first, and niceness only orders the processes of one session. A
    process that leads its own session (`make run`'s supervisor, the tests and the
    benchmark start each service so) is one group, so its group's niceness is set too;
    in a shared session the group is left alone (it would slow its other processes).
    In containers the runtime's CPU shares decide (docs/operations.md).
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    if os.getpriority(os.PRIO_PROCESS, 0) < nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    group = False
    if os.getsid(0) == os.getpid() and AUTOGROUP.exists():
        with contextlib.suppress(OSError):
            AUTOGROUP.write_text(str(nice))
            group = True
    log.info("cpu_priority", nice=os.getpriority(os.PRIO_PROCESS, 0), autogroup=group)
