"""The log-size benchmark's copies: same sizes, fresh ids, relations kept."""

from bench.log_size import copy_of

EVENT = b'{"event_id":"3fa9c1e2-0b9e-4f1d-8a40-7d1c2a40b0c1","case_id":"case-7d1c2a40"}'


def test_a_copy_has_the_same_size_and_fresh_ids_consistently_replaced():
    first, second = copy_of(EVENT, 1), copy_of(EVENT, 2)

    assert len(first) == len(second) == len(EVENT)
    assert first != EVENT and second != first
    assert copy_of(EVENT, 1) == first
    # case-7d1c2a40 appears in both ids: one mapping, so the copy's events still relate.
    mapped = copy_of(b"7d1c2a40", 1)
    assert first.count(mapped) == 2
