"""make run's supervisor: restart with a doubling backoff, give up on repeated crashes."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.local.supervisor import GaveUp, RestartPolicy, Service, describe_exit, stop_all, watch


def service(code: str) -> Service:
    """A service whose process runs the Python `code`."""
    return Service("svc", [sys.executable, "-c", code], {}, Path.cwd(), port=0)


def wait_exit(svc: Service) -> None:
    deadline = time.monotonic() + 30
    while svc.proc.poll() is None:
        assert time.monotonic() < deadline, "the process did not exit"
        time.sleep(0.01)


def test_the_backoff_doubles_from_one_second_up_to_thirty() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_five_crashes_within_the_window_give_up_and_older_ones_are_forgotten() -> None:
    policy = RestartPolicy(max_crashes=5, window_s=60)
    svc = service("")
    counts = [svc.record_crash(t, policy.window_s) for t in (0, 10, 20, 30, 100)]
    assert counts == [1, 2, 3, 4, 1]
    assert not policy.gives_up(4) and policy.gives_up(5)


def test_the_reason_names_the_signal_or_the_exit_code() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(1) == "exited with code 1"


def test_a_dead_service_starts_again_once_its_backoff_is_over(capsys) -> None:
    svc = service("import sys; sys.exit(3)")
    policy = RestartPolicy(backoff_s=1, max_crashes=5)
    svc.start()
    first = svc.proc.pid
    wait_exit(svc)
    watch([svc], policy, now=100.0)
    assert svc.restart_at == 101.0
    watch([svc], policy, now=100.5)
    assert svc.proc.pid == first
    watch([svc], policy, now=101.0)
    assert svc.proc.pid != first and svc.recovering
    wait_exit(svc)
    watch([svc], policy, now=102.0)
    assert svc.restart_at == 104.0
    assert "svc exited with code 3; restarting in 1s" in capsys.readouterr().out


def test_a_service_that_keeps_crashing_makes_the_supervisor_give_up() -> None:
    svc = service("import sys; sys.exit(1)")
    policy = RestartPolicy(backoff_s=0, max_crashes=3, window_s=60)
    svc.start()
    with pytest.raises(GaveUp, match="svc exited with code 1: 3 crashes within 60s"):
        for now in range(10):
            wait_exit(svc)
            watch([svc], policy, now=float(now))  # notes the crash
            watch([svc], policy, now=float(now))  # starts it again


def test_stop_all_terminates_running_services_and_skips_dead_ones() -> None:
    alive, dead = service("import time; time.sleep(60)"), service("")
    alive.start()
    dead.start()
    wait_exit(dead)
    stop_all([alive, dead], grace=10)
    assert alive.proc.returncode == -signal.SIGTERM
    assert dead.proc.returncode == 0


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print(1, flush=True); time.sleep(60)"
    )
    stubborn = Service("svc", [sys.executable, "-c", code], {}, Path.cwd(), port=0)
    stubborn.proc = subprocess.Popen(stubborn.command, stdout=subprocess.PIPE)
    stubborn.proc.stdout.readline()  # SIGTERM is ignored from here on
    stop_all([stubborn], grace=0.5)
    assert stubborn.proc.returncode == -signal.SIGKILL
