"""The runtime's partitioner puts every key where aiokafka's (and the Java client's) does."""

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from shared.partitioner import KeyPartitioner, murmur2


@given(st.binary(max_size=200))
def test_murmur2_is_the_java_clients_hash(data):
    assert murmur2(data) == aiokafka_murmur2(data)


def test_murmur2_matches_kafkas_published_values():
    # Values of org.apache.kafka.common.utils.Utils.murmur2 (Kafka's UtilsTest), unsigned.
    assert murmur2(b"21") == -973932308 & 0xFFFFFFFF
    assert murmur2(b"foobar") == -790332482 & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == -985981536 & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-longer-string") == -1486304829 & 0xFFFFFFFF
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971 & 0xFFFFFFFF
    assert murmur2(b"abc") == 479470107


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
