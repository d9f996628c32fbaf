"""The services of `make run` as child processes: started, watched, restarted with backoff.

What compose's restart policy does for containers: a service that dies is started again
after a delay that doubles with each recent crash; one that crashes too often in a short
time makes the supervisor give up rather than restart it forever.
"""

import signal
import subprocess
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


def say(message: str) -> None:
    """One line of the supervisor's own output."""
    print(f"[run] {message}", flush=True)


@dataclass(frozen=True)
class RestartPolicy:
    """How long a dead service waits before it starts again, and when to give up."""

    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    max_crashes: int = 5
    window_s: float = 60.0

    def delay(self, recent_crashes: int) -> float:
        """The wait before the next start: doubles with each recent crash, up to the max."""
        return min(self.backoff_s * 2 ** max(recent_crashes - 1, 0), self.backoff_max_s)

    def gives_up(self, recent_crashes: int) -> bool:
        """True when a service crashed too often within the window to be started again."""
        return recent_crashes >= self.max_crashes


class GaveUp(Exception):
    """A service crashed too often: everything is to be stopped."""


def describe_exit(returncode: int) -> str:
    """Why a process ended, from its return code: a signal's name or the exit code."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class Service:
    """One service's process, its recent crashes and when it is due to start again."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    proc: subprocess.Popen | None = None
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    recovering: bool = False
    """Restarted and not yet ready: the supervisor says so once /readyz answers."""

    def start(self) -> None:
        """Start the process in a session of its own (the terminal's Ctrl-C skips it)."""
        self.proc = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, start_new_session=True
        )
        self.restart_at = None
        say(f"{self.name} started (pid {self.proc.pid})")

    def record_crash(self, now: float, window_s: float) -> int:
        """Note a crash at `now`; how many crashes fall within the last `window_s`."""
        self.crashes.append(now)
        while now - self.crashes[0] > window_s:
            self.crashes.popleft()
        return len(self.crashes)


def watch(services: Iterable[Service], policy: RestartPolicy, now: float) -> None:
    """Start the services whose backoff is over; schedule a restart of those that died."""
    for service in services:
        if service.restart_at is not None:
            if now >= service.restart_at:
                service.start()
                service.recovering = True
            continue
        assert service.proc is not None
        code = service.proc.poll()
        if code is None:
            continue
        why = describe_exit(code)
        crashes = service.record_crash(now, policy.window_s)
        if policy.gives_up(crashes):
            raise GaveUp(
                f"{service.name} {why}: {crashes} crashes within {policy.window_s:g}s, giving up"
            )
        delay = policy.delay(crashes)
        service.restart_at = now + delay
        say(f"{service.name} {why}; restarting in {delay:g}s")


def stop_all(services: Iterable[Service], grace: float = 30.0) -> None:
    """SIGTERM every running service, wait for in-flight work to finish, SIGKILL stragglers."""
    running = [s for s in services if s.proc is not None and s.proc.poll() is None]
    for service in running:
        service.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for service in running:
        try:
            service.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            say(f"{service.name} did not stop in {grace:.0f}s: killing")
            service.proc.kill()
            service.proc.wait()
