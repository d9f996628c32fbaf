"""`make run` end to end: the whole system starts, takes a contact, outlives a killed
service, and Ctrl-C stops it all; a service that keeps crashing makes it give up."""

import os
import signal
import subprocess
import urllib.request
import uuid
from email.message import EmailMessage

import aiosmtplib
import orjson
import pytest

from services.gateway.inbound import contact_event_id
from tests.e2e.runs import what_went_wrong
from tests.kafka_tools import RawKafka

pytestmark = pytest.mark.e2e


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


AIOKAFKA_RETRIES = (
    "Unable connect to node with id",
    "Group Coordinator Request failed",
)
"""aiokafka's own ERROR lines while it retries a broker connection: seen on a loaded fresh
broker while the services start (before every one is ready), never after."""


def _start_noise(line: str) -> bool:
    """True for an aiokafka retry logged while the services start."""
    return line.startswith("{") and any(m in line for m in AIOKAFKA_RETRIES)


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


async def _mail_is_classified(kafka: str, port: int) -> None:
    """Mail the development care address as the firm's relay would; wait for its case."""
    message = EmailMessage()
    message["From"], message["To"] = "Khach.Hang@Example.VN", "cskh@lexcare.example.vn"
    message["Subject"], message["Message-ID"] = "Hỏi về ly hôn", f"<{uuid.uuid4()}@example.vn>"
    message.set_content("Xin tư vấn về thủ tục ly hôn.")
    await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=30)
    contact_id = contact_event_id(
        "email", f"khach.hang@example.vn/{message['Message-ID'].strip('<>')}"
    )
    async with RawKafka(kafka, "") as client:
        await client.read(
            "case.classified",
            until=lambda records: any(contact_id.encode() in r.value for r in records),
            timeout=60,
        )


async def test_the_whole_system_starts_outlives_a_killed_service_and_stops_on_ctrl_c(start_run):
    run = start_run()
    try:
        run.wait_for("lexcare is running", timeout=180)
        await _contact_is_classified(run.kafka)
        mail_port = int(run.wait_for(r"^  Mail in    smtp://127\.0\.0\.1:(\d+)", 5).group(1))
        await _mail_is_classified(run.kafka, mail_port)

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
    # A healthy start and its contacts: JSON lines only, no error (while the services
    # start, only aiokafka's own connection retries). After the SIGKILL the
    # restarted service may log the broker's transient reconnect errors, but still only
    # JSON lines, never a Python dict.
    lines = text.splitlines(keepends=True)
    kill = next(i for i, line in enumerate(lines) if "killed by SIGKILL" in line)
    running = next(i for i, line in enumerate(lines) if "lexcare is running" in line)
    starting, healthy = "".join(lines[:running]), "".join(lines[running:kill])
    after_kill = "".join(lines[kill:])
    assert [line for line in _unreadable_lines(starting) if not _start_noise(line)] == []
    assert _unreadable_lines(healthy) == []
    assert [line for line in _unreadable_lines(after_kill) if '"level":"error"' not in line] == []


def test_a_service_that_keeps_crashing_stops_everything_with_a_clear_message(start_run):
    run = start_run(
        *("--max-crashes", "3", "--crash-window", "600", "--restart-backoff", "0.5"),
        env={"LEXCARE_ROSTER_FILE": "/nonexistent/roster.yaml"},  # routing fails at start
    )
    code = run.proc.wait(timeout=300)
    text = run.text()
    assert code == 1, what_went_wrong(run.log)
    assert "[run] routing exited with code 1; restarting in 0.5s" in text
    assert "[run] routing exited with code 1; restarting in 1s" in text
    assert (
        "[run] routing exited with code 1: 3 crashes within 600s, giving up: "
        "stopping everything" in text
    )
    assert "lexcare is running" not in text
    assert text.rstrip().endswith("[run] stopped")
    assert _pids_using(str(run.data)) == []
