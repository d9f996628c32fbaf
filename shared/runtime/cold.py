"""Values that left memory, kept on local disk: one SQLite file per owned partition.

A partition's values past `LEXCARE_RUNTIME_MAX_KEYS` leave memory for this file, and a rule
that needs one again reads it back from here, synchronously, in microseconds: no database
round trip, no miss to rerun. It is a cache of what storage already holds (a value leaves
memory only once its batch is stored), private to the process: it is created empty when a
partition is restored (the restore fills it with what it does not keep in memory) and
deleted when the partition's state is let go or the process ends. Storage stays the truth.

Why a local file rather than reading storage back: FerretDB v1 (this machine's MongoDB
stand-in) reads a document by `_id` with a sequential scan of the collection, so each read
back cost a scan of the partition's stored history (1.4 s seen under load); Kafka Streams
keeps its state stores on local disk (RocksDB) for the same reason. SQLite is in Python's
standard library, and a key lookup in it costs a few microseconds.
"""

import itertools
import os
import pickle
import shutil
import sqlite3
import tempfile
import weakref
from pathlib import Path
from typing import Any

PICKLE_PROTOCOL = 5
FLUSH_AT = 512
"""Values queued before they are written in one transaction."""


def _drop(db: sqlite3.Connection, path: Path | None) -> None:
    db.close()
    if path is not None:
        path.unlink(missing_ok=True)


class ColdStore:
    """Key → value for the keys of one partition that left memory.

    Values are pickled: the file is written and read by this process only, never shared.
    The owner keeps it exact: a key is here only while it is out of memory (`take` moves it
    back, `discard` forgets a key whose newer version or deletion lives elsewhere).
    """

    def __init__(self, directory: Path | None, name: str) -> None:
        self.path = None if directory is None else directory / f"{name}.sqlite"
        where = ":memory:" if self.path is None else self.path
        self.db = sqlite3.connect(where, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=OFF",  # a cache: a crash throws the file away
            "synchronous=OFF",
            "locking_mode=EXCLUSIVE",
            "cache_size=-2048",  # 2 MiB of pages: memory stays bounded
            "temp_store=MEMORY",
        ):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE cold (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
        self.pending: dict[str, Any] = {}
        """Values queued for the next write (read from here first)."""
        self.taken = 0
        """Values read back into memory so far."""
        self._finalizer = weakref.finalize(self, _drop, self.db, self.path)

    @classmethod
    def in_memory(cls) -> "ColdStore":
        """A store held by SQLite in memory (tests and tools; the runtime's are files)."""
        return cls(None, "memory")

    def put(self, key: str, value: Any) -> None:
        """Keep `key`'s value (it leaves memory); written with the next `flush`."""
        self.pending[key] = value
        if len(self.pending) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write the queued values in one transaction."""
        if not self.pending:
            return
        rows = [(k, pickle.dumps(v, protocol=PICKLE_PROTOCOL)) for k, v in self.pending.items()]
        self.pending = {}
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO cold (k, v) VALUES (?, ?)", rows)
        self.db.execute("COMMIT")

    def get(self, key: str) -> Any | None:
        """`key`'s value, left here (a read that does not bring it back); None when absent."""
        if key in self.pending:
            return self.pending[key]
        row = self.db.execute("SELECT v FROM cold WHERE k = ?", (key,)).fetchone()
        return None if row is None else pickle.loads(row[0])

    def take(self, key: str) -> Any | None:
        """`key`'s value, removed from here (it goes back to memory); None when absent."""
        if key in self.pending:
            return self.pending.pop(key)
        value = self.get(key)
        if value is not None:
            self.db.execute("DELETE FROM cold WHERE k = ?", (key,))
            self.taken += 1
        return value

    def discard(self, key: str) -> None:
        """Forget `key` (its value now lives in memory, or it was deleted)."""
        if self.pending.pop(key, None) is None:
            self.db.execute("DELETE FROM cold WHERE k = ?", (key,))

    def __len__(self) -> int:
        self.flush()
        (count,) = self.db.execute("SELECT count(*) FROM cold").fetchone()
        return int(count)

    def close(self) -> None:
        """Close and delete the file (also done when the store is garbage collected)."""
        self._finalizer()


_swept: set[Path] = set()
"""Spill roots this process has cleared of what earlier processes left."""


class SpillDirectory:
    """Where one runtime's cold stores live: a directory of its own under `root`, named by
    service and process, removed at stop. The first in a process removes the directories
    earlier processes left under `root` (killed ones; in a container, its previous run has
    the same pid)."""

    def __init__(self, root: str, service: str) -> None:
        base = Path(root or tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        if base not in _swept:
            _swept.add(base)
            for left in base.glob("lexcare-spill-*"):
                pid = left.name.removeprefix("lexcare-spill-").split("-", 1)[0]
                if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
                    shutil.rmtree(left, ignore_errors=True)
        prefix = f"lexcare-spill-{os.getpid()}-{service}-"
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        self._numbers = itertools.count()
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, True)

    def store(self, partition: int) -> ColdStore:
        """A new, empty cold store for `partition` (a file of its own: an earlier state of
        the same partition may still be closing)."""
        self.path.mkdir(parents=True, exist_ok=True)
        return ColdStore(self.path, f"p{partition}-{next(self._numbers)}")

    def remove(self) -> None:
        """Delete the directory and what is left in it."""
        self._finalizer()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
