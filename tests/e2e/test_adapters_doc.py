"""docs/adapters.md runs: every bash and Python block, in order, against a live system.

The system is `make run`'s supervisor on free ports. Blocks share shell variables (the
case id found by one block is used by the next) through a state file; each block must
exit 0, and the outputs that prove the contract are checked.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.runs import what_went_wrong
from tests.infra import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (shutil.which("kcat") and shutil.which("jq")),
        reason="docs/adapters.md uses kcat and jq (apt-get install kcat jq)",
    ),
]

DOC = ROOT / "docs" / "adapters.md"
SHARED_VARIABLES = "KAFKA EVENT_ID SENDER CASE_ID REQUEST_ID SURVEY_ID MONTH"


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every bash and python block, in order."""
    return re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.S)


def run_block(language: str, code: str, kafka: str, state: Path, log: Path) -> str:
    if language == "python":
        command = [sys.executable, "-c", code]
    else:
        code = code.replace("export KAFKA=127.0.0.1:9092", f"export KAFKA={kafka}")
        script = (
            f"set -eo pipefail\nsource {state}\n{code}\n"
            f"declare -p {SHARED_VARIABLES} > {state} 2>/dev/null || true\n"
        )
        command = ["bash", "-c", script]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=90,
            env={**os.environ, "KAFKA": kafka},
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"block timed out:\n{code}\n--- the system's log ---\n{what_went_wrong(log)}")
    assert result.returncode == 0, (
        f"block failed:\n{code}\n{result.stdout}\n{result.stderr}\n"
        f"--- the system's log ---\n{what_went_wrong(log)}"
    )
    return result.stdout


def test_every_command_in_the_adapters_guide_works_against_a_running_system(start_run):
    run = start_run()
    run.wait_for("lexcare is running", timeout=180)
    state = run.data / "state.sh"
    state.touch()
    outputs: list[str] = []
    for language, code in code_blocks(DOC.read_text()):
        if "metrics.kpi" in code:
            time.sleep(3)  # metrics publishes coalesced KPI updates each second
        outputs.append(run_block(language, code, run.kafka, state, run.log))
    text = "\n".join(outputs)
    classified = next(json.loads(line) for line in text.splitlines() if '"legal_field"' in line)
    assert classified["legal_field"] == "land" and classified["is_dispute"] is True
    assert '"event_type":"fee.quoted"' in text and '"event_type":"case.assigned"' in text
    assert '"nps":9' in text and '"csat":5' in text  # survey.scored
    assert "x-error=invalid event: occurred_at: Input should have timezone info" in text
    assert '{"kpi":"nps","value":100' in text  # the kcat KPI table
    assert re.search(r"^\d+ KPI values$", text, flags=re.M)  # the Python KPI reader
