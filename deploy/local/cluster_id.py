"""Print a new KRaft cluster id, as `kafka-storage random-uuid` makes one.

A cluster id is 16 random bytes in URL-safe base64 without padding. Like Kafka's
Uuid.randomUuid, draw again when the id is reserved (all zero, or 1) or starts with `-`:
StorageTool would read such an id as an option (1 draw in 64).
"""

import base64
import uuid
from collections.abc import Callable

RESERVED = {bytes(16), (1).to_bytes(16, "big")}


def encode(raw: bytes) -> str:
    """Kafka's string form of a 16-byte id: URL-safe base64, no padding."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A random cluster id that is not reserved and does not start with `-`."""
    while True:
        raw = draw()
        text = encode(raw)
        if raw not in RESERVED and not text.startswith("-"):
            return text


if __name__ == "__main__":
    print(new_cluster_id())
