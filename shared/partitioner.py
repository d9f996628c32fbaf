"""Kafka's default partitioner (murmur2 of the key), with each key's hash kept.

The runtime asks a key's partition for every record it consumes (is it co-partitioned?),
every event it hands off and, through aiokafka's producer, every event it publishes. A
case's events share its key, so the same keys come back within seconds. aiokafka's
`murmur2` is a pure-Python loop over the key's bytes (10–18 µs for a UUID); this keeps the
last `capacity` keys' hashes (0.36 µs a key found).
"""

import random
from collections.abc import Sequence

from aiokafka.partitioner import murmur2


class KeyPartitioner:
    """aiokafka's `DefaultPartitioner`, with each key's hash kept: the same partitions for
    the same keys (other clients' records land where ours do), a fraction of the CPU.

    At most `capacity` hashes are kept; past it they are all let go and kept again as keys
    come back, so memory stays bounded (≈ 150 bytes a key) without an LRU's bookkeeping.
    """

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self._hashes: dict[bytes, int] = {}

    def hash(self, key: bytes) -> int:
        """The key's murmur2, positive (what the partition is taken modulo of)."""
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) >= self.capacity:
                self._hashes.clear()
            h = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return h

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        """The partition of `key` among `all_partitions`; a random one for no key."""
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[self.hash(key) % len(all_partitions)]
