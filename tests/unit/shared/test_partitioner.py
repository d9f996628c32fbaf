"""The runtime's partitioner puts every key where aiokafka's (and the Java client's) does."""

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from shared.partitioner import KeyPartitioner


def test_the_kept_hash_is_the_java_clients_murmur2():
    # Values of org.apache.kafka.common.utils.Utils.murmur2 (Kafka's UtilsTest), made
    # positive as the default partitioner does.
    partitioner = KeyPartitioner()
    for key, java in (
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ):
        assert partitioner.hash(key) == java & 0x7FFFFFFF
        assert partitioner.hash(key) == java & 0x7FFFFFFF  # kept


@given(st.lists(st.binary(min_size=1, max_size=60), max_size=50), st.integers(1, 64))
def test_keys_land_on_the_default_partitioners_partition(keys, count):
    partitions = list(range(count))
    ours, theirs = KeyPartitioner(capacity=8), DefaultPartitioner()
    for key in keys + keys:  # the second time from the kept hashes (or after a clear)
        assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)


def test_the_kept_hashes_stay_within_capacity():
    partitioner = KeyPartitioner(capacity=100)
    for n in range(1_000):
        partitioner(f"case-{n}".encode(), [0, 1, 2], [0, 1, 2])
        assert len(partitioner._hashes) <= 100


def test_a_record_without_key_goes_to_an_available_partition():
    partitioner = KeyPartitioner()
    assert {partitioner(None, [0, 1, 2, 3], [2]) for _ in range(50)} == {2}
    assert {partitioner(None, [0, 1], []) for _ in range(200)} == {0, 1}
