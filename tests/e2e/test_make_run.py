"""`make run` end to end: the whole system starts, takes a contact, outlives a killed
service, and Ctrl-C stops it all; a service that keeps crashing makes it give up."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.infra import ROOT, free_port
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.e2e


@dataclass
class Run:
    """run.py started on free ports, its output in a log file under `data`."""

    proc: subprocess.Popen
    data: Path
    log: Path
    kafka: str
    port_offset: int

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float, *, after: int = 0) -> re.Match:
        """The first match of `pattern` in the log past offset `after`, polled to a deadline."""
        deadline = time.monotonic() + timeout
        while not (found := re.compile(pattern, re.M).search(self.text(), after)):
            assert self.proc.poll() is None, f"run.py exited early:\n{_what_went_wrong(self.log)}"
            assert time.monotonic() < deadline, (
                f"no {pattern!r} in {timeout}s:\n{_what_went_wrong(self.log)}"
            )
            time.sleep(0.3)
        return found

    def stop(self) -> int:
        """Ctrl-C, as a terminal sends it; run.py's exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=90)

    def cleanup(self) -> None:
        """Stop whatever run.py left, delete the run directory (all of its state is in it)."""
        for name in ("ferretdb", "kafka"):
            script, state = ROOT / "deploy" / "local" / f"{name}.sh", self.data / "state" / name
            subprocess.run(["bash", str(script), "stop", str(state)], check=False)
        shutil.rmtree(self.data, ignore_errors=True)


def launch(*flags: str, env: dict[str, str] | None = None) -> Run:
    """Start deploy/local/run.py on free ports in a temporary directory."""
    data = Path(tempfile.mkdtemp(prefix="lexcare-run-"))
    kafka_port, mongo_port = free_port(span=2), free_port()
    offset = free_port(span=6) - 8081
    log = data / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "deploy/local/run.py", "--data", str(data / "state")),
                *("--kafka-port", str(kafka_port), "--mongo-port", str(mongo_port)),
                *("--port-offset", str(offset), *flags),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "LEXCARE_LOG_FORMAT": "json",
                **(env or {}),
            },
        )
    return Run(proc, data, log, f"127.0.0.1:{kafka_port}", offset)


@pytest.fixture
def start_run() -> Iterator[Callable[..., Run]]:
    """`launch`, with whatever it started stopped and deleted at the end of the test."""
    runs: list[Run] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> Run:
        runs.append(launch(*flags, env=env))
        return runs[-1]

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.stop()
        run.cleanup()


def _what_went_wrong(log: Path) -> str:
    """run.py's own lines and every error line first (the shutdown that follows buries them)."""
    lines = log.read_text(errors="replace").splitlines()
    telling = [
        line
        for line in lines
        if line.startswith("[run]") or "error" in line.lower() or "Traceback" in line
    ]
    return "\n".join([*telling[-40:], "--- last lines ---", *lines[-15:]])


def _unreadable_lines(text: str) -> list[str]:
    """Service lines that are not one JSON event, show a Python dict, or report an error."""
    bad = []
    for line in text.splitlines():
        if not line.startswith("{"):
            # run.py's own lines, the infra scripts' and the banner: never a service's.
            if "{'" in line or not (line == "" or line.startswith(("[", "  ", "lexcare is"))):
                bad.append(line)
            continue
        try:
            level = orjson.loads(line)["level"]
        except (orjson.JSONDecodeError, KeyError):
            bad.append(line)
            continue
        if level in {"error", "critical"} or "{'" in line:
            bad.append(line)
    return bad


def _pids_using(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def _readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as reply:
            return reply.status
    except OSError:
        return 0


async def _contact_is_classified(kafka: str) -> None:
    """Publish a contact as an adapter would; wait for its case.classified."""
    async with RawKafka(kafka, "") as client:
        event_id, sender = str(uuid.uuid4()), f"web-{uuid.uuid4().hex[:8]}"
        await client.send(
            "contact.received",
            {
                "event_id": event_id,
                "event_type": "contact.received",
                "occurred_at": "2026-11-23T09:15:00+07:00",
                "producer": "e2e",
                "channel": "website",
                "sender_id": sender,
                "message": "xin tư vấn",
                "customer": {"email": "Khach.Hang@Example.VN"},
            },
            key=sender,
        )
        events = await client.read(
            "case.classified",
            until=lambda records: any(event_id.encode() in r.value for r in records),
            timeout=60,
        )
        assert any(event_id.encode() in r.value for r in events)


async def test_the_whole_system_starts_outlives_a_killed_service_and_stops_on_ctrl_c(start_run):
    run = start_run()
    try:
        run.wait_for("lexcare is running", timeout=180)
        await _contact_is_classified(run.kafka)

        intake_pid = int(run.wait_for(r"^\[run\] intake started \(pid (\d+)\)", 5).group(1))
        mark = len(run.text())
        os.kill(intake_pid, signal.SIGKILL)
        run.wait_for(r"^\[run\] intake killed by SIGKILL; restarting in 1s", 30, after=mark)
        new_pid = int(run.wait_for(r"^\[run\] intake started \(pid (\d+)\)", 30, after=mark)[1])
        run.wait_for(r"^\[run\] intake is ready again", 120, after=mark)
        assert new_pid != intake_pid
        assert _readyz(8081 + run.port_offset) == 200
        await _contact_is_classified(run.kafka)

        mark = len(run.text())  # killed again: Ctrl-C while its restart is pending
        os.kill(new_pid, signal.SIGKILL)
        run.wait_for(r"^\[run\] intake killed by SIGKILL; restarting in 2s", 30, after=mark)
    finally:
        code = run.stop()
    text = run.text()
    assert code == 0, text[-3000:]
    assert "[run] stopped" in text
    assert _pids_using(str(run.data)) == []
    assert "Khach.Hang@Example.VN".lower() not in text.lower()
    # A healthy start and its contacts: JSON lines only, no error. After the SIGKILL the
    # restarted service may log the broker's transient reconnect errors, but still only
    # JSON lines, never a Python dict.
    lines = text.splitlines(keepends=True)
    kill = next(i for i, line in enumerate(lines) if "killed by SIGKILL" in line)
    healthy, after_kill = "".join(lines[:kill]), "".join(lines[kill:])
    assert _unreadable_lines(healthy) == []
    assert [line for line in _unreadable_lines(after_kill) if '"level":"error"' not in line] == []


def test_a_service_that_keeps_crashing_stops_everything_with_a_clear_message(start_run):
    run = start_run(
        *("--max-crashes", "3", "--crash-window", "600", "--restart-backoff", "0.5"),
        env={"LEXCARE_ROSTER_FILE": "/nonexistent/roster.yaml"},  # routing fails at start
    )
    code = run.proc.wait(timeout=300)
    text = run.text()
    assert code == 1, _what_went_wrong(run.log)
    assert "[run] routing exited with code 1; restarting in 0.5s" in text
    assert "[run] routing exited with code 1; restarting in 1s" in text
    assert (
        "[run] routing exited with code 1: 3 crashes within 600s, giving up: "
        "stopping everything" in text
    )
    assert "lexcare is running" not in text
    assert text.rstrip().endswith("[run] stopped")
    assert _pids_using(str(run.data)) == []
