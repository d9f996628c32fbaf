"""`make clean` resets every piece of local state: Kafka's log and the database alike.

Runs the real make targets on the test's own ports and run directory. The run directory
sits in a private (0700) temporary directory, as /root does, and its path is long enough
that PostgreSQL's unix socket must live elsewhere: both cases of ferretdb.sh's layout.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from tests.infra import ROOT, free_ports

pytestmark = pytest.mark.e2e

LONG_NAME = "a-run-directory-with-a-name-long-enough-to-move-the-postgres-socket"


def make(target: str, run_dir: Path, kafka_port: int, mongo_port: int) -> None:
    """Run `make <target>` on this test's run directory and ports, as from a user's shell."""
    subprocess.run(
        [
            *("make", "--no-print-directory", "-C", str(ROOT), target),
            *(f"RUN_DIR={run_dir}", f"LEXCARE_KAFKA_PORT={kafka_port}"),
            f"LEXCARE_MONGO_PORT={mongo_port}",
        ],
        check=True,
        timeout=300,
        env=shell_env(),
    )


def shell_env() -> dict[str, str]:
    """This environment without the test's virtualenv (make runs its own uv)."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return {**env, "PATH": path}


def stale_legacy_database_dir(ferretdb_dir: Path) -> Path:
    """A leftover of the layout before: PostgreSQL's data under /var/tmp (root only)."""
    digest = hashlib.sha256(str(ferretdb_dir).encode()).hexdigest()[:16]
    legacy = Path("/var/tmp/lexcare-pg") / digest
    if os.geteuid() == 0:
        (legacy / "data").mkdir(parents=True)
    return legacy


@pytest.fixture
def run_dir() -> Iterator[tuple[Path, int, int]]:
    """A private run directory and free ports; `make clean` at the end, whatever happens."""
    run = Path(tempfile.mkdtemp(prefix="lexcare-clean-")) / LONG_NAME
    ports = tuple(free_ports(2, 1))
    assert len(str(run / "ferretdb" / "pg")) > 90
    try:
        yield run, *ports
    finally:
        make("clean", run, *ports)
        run.parent.rmdir()


def test_make_clean_then_infra_up_starts_with_an_empty_database(run_dir):
    run, kafka_port, mongo_port = run_dir
    mongo_url = f"mongodb://127.0.0.1:{mongo_port}/"
    database = f"lexcare_clean_{uuid.uuid4().hex[:8]}"
    legacy = stale_legacy_database_dir(run / "ferretdb")
    make("infra-up", run, kafka_port, mongo_port)
    with MongoClient(mongo_url, serverSelectionTimeoutMS=10_000) as client:
        client[database].cases.insert_one({"_id": "case-1"})
        assert database in client.list_database_names()

    make("clean", run, kafka_port, mongo_port)
    assert not run.exists()
    assert not legacy.exists()
    make("infra-up", run, kafka_port, mongo_port)

    with MongoClient(mongo_url, serverSelectionTimeoutMS=10_000) as client:
        assert database not in client.list_database_names()
