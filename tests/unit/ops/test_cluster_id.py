"""The KRaft cluster id kafka.sh formats storage with never reads as a command-line option."""

import base64
import itertools
from pathlib import Path

from deploy.local.cluster_id import encode, new_cluster_id

KAFKA_SH = Path(__file__).parents[3] / "deploy" / "local" / "kafka.sh"


def test_no_cluster_id_in_100k_draws_starts_with_a_dash_and_each_is_16_bytes() -> None:
    ids = [new_cluster_id() for _ in range(100_000)]
    assert [i for i in ids if i.startswith("-")] == []
    assert {len(base64.urlsafe_b64decode(i + "==")) for i in ids} == {16}
    assert len(set(ids)) == len(ids)


def test_an_id_that_would_start_with_a_dash_or_is_reserved_is_drawn_again() -> None:
    dash_first = bytes([0xF8]) + bytes(15)  # the first 6 bits 111110 encode as "-"
    good = bytes(range(16))
    draws = itertools.chain([dash_first, bytes(16), (1).to_bytes(16, "big"), good])
    assert encode(dash_first).startswith("-")
    assert new_cluster_id(lambda: next(draws)) == encode(good)


def test_kafka_sh_formats_storage_with_the_generator_and_an_attached_value() -> None:
    script = KAFKA_SH.read_text()
    assert 'python3 "$HERE/cluster_id.py"' in script
    assert '--cluster-id="$cluster"' in script and " -t " not in script
