"""The fault-injection points are off unless LEXCARE_FAULT_INJECTION names them."""

import os
import subprocess
import sys

from shared import faults


def test_no_point_is_enabled_when_the_setting_is_absent():
    code = (
        "from shared import faults\n"
        "assert faults.POINTS == frozenset()\n"
        "faults.crash_at('after_handle', 'contact.received')\n"
        "print('alive')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LEXCARE_FAULT_INJECTION"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "alive"


def test_an_enabled_crash_point_ends_the_process_with_its_code_and_others_do_not():
    code = (
        "from shared import faults\n"
        "faults.crash_at('after_handle', 'case.resolved')\n"
        "print('survived other topic')\n"
        "faults.crash_at('after_handle', 'contact.received')\n"
        "print('not reached')\n"
    )
    env = {**os.environ, "LEXCARE_FAULT_INJECTION": "after_handle:contact.received"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == faults.CRASH_EXIT_CODE
    assert "survived other topic" in done.stdout
    assert "not reached" not in done.stdout
