"""Personal data never reaches a log line in clear."""

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import structlog
from pymongo.errors import DuplicateKeyError

from shared.logging import EXPECTED_NOTICES, configure_logging, mask_text, pseudonym


def test_phone_numbers_and_emails_inside_free_text_are_masked():
    text = "gọi 0912 345 678 hoặc +84 912.345.678, mail An.Nguyen@Example.vn nhé"
    masked = mask_text(text)
    for secret in ("0912 345 678", "912.345.678", "An.Nguyen@Example.vn"):
        assert secret not in masked
    assert masked.startswith("gọi <masked:")


def test_ids_and_timestamps_are_left_alone():
    text = "case-7d1c2a40 event 0f8fad5b-d9cb-0841-2345-67890abcdef1 at 2026-11-23T09:15:00+07:00"
    assert mask_text(text) == text


def test_a_pseudonym_is_stable_so_lines_can_still_be_correlated():
    assert pseudonym("+84912345678") == pseudonym("+84912345678") != pseudonym("+84912345679")


def test_personal_fields_are_masked_in_the_rendered_json_line(capsys):
    configure_logging("probe", level="DEBUG", fmt="json")
    structlog.get_logger().info(
        "contact_recorded",
        name="Nguyễn Văn An",
        phone="+84912345678",
        customer={"email": "an@example.vn"},
        case_id="case-1",
        note="khách nói số mới là 0987654321",
    )
    line = capsys.readouterr().err
    for secret in ("Nguyễn Văn An", "+84912345678", "an@example.vn", "0987654321"):
        assert secret not in line
    assert '"case_id":"case-1"' in line
    assert '"service":"probe"' in line


def test_stdlib_loggers_of_libraries_are_masked_too():
    configure_logging("probe", level="INFO", fmt="json")
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)
    logging.getLogger("some.library").warning("failed for user an@example.vn")
    assert "an@example.vn" not in stream.getvalue()
    assert "failed for user <masked:" in stream.getvalue()


@pytest.mark.timeout(20)
def test_masking_a_huge_field_takes_linear_time_and_still_finds_the_email_after_it():
    # Quadratic before the fix: a 1 MB word froze the service's event loop for minutes.
    masked = mask_text("a" * 1_000_000 + " an@example.vn " + "b." * 200_000)
    assert "an@example.vn" not in masked
    assert masked.startswith("a" * 1000)


PHONES = ("0912 345 678", "+84 912.345.678", "84912345678", "+84912345678")
EMAIL = "An.Nguyen@Example.vn"
NAME = "Nguyễn Văn An"
LOCAL_ONLY = "only-in-a-local-7f3a"
"""A harmless value held only by a local variable: it shows whether locals are rendered."""


def _fail_with_personal_data() -> None:
    """Raise a chained error naming a customer, as a store or a client library would."""
    name, phones, email, marker = NAME, PHONES, EMAIL, LOCAL_ONLY
    customer = {"name": name, "phone": phones[0], "email": email, "marker": marker}
    try:
        raise DuplicateKeyError(
            "E11000 duplicate key error collection: lexcare_intake.identifiers index: _id_ "
            f'dup key: {{ _id: "phone:{phones[3]}" }}'
        )
    except DuplicateKeyError as err:
        raise ValueError(
            f"cannot register {customer['phone']} / {phones[1]} / {phones[2]}, "
            f"email:{email}, phone:{phones[0]}"
        ) from err


def _rendered(fmt: str, log_failure: Callable[[], None]) -> str:
    configure_logging("probe", level="INFO", fmt=fmt)
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)
    try:
        _fail_with_personal_data()
    except ValueError:
        log_failure()
    return stream.getvalue()


def _log_with_structlog() -> None:
    structlog.get_logger("lexcare.probe").exception("handler_failed", name=NAME, case_id="case-1")


def _log_with_stdlib() -> None:
    # FastStream, aiokafka and uvicorn log through the standard library.
    logging.getLogger("aiokafka.consumer").error("consumer failed", exc_info=True)


@pytest.mark.parametrize("fmt", ["json", "console"])
@pytest.mark.parametrize("log_failure", [_log_with_structlog, _log_with_stdlib])
def test_an_exception_is_logged_without_personal_data_from_its_message_or_locals(fmt, log_failure):
    out = _rendered(fmt, log_failure)
    for secret in (*PHONES, EMAIL, EMAIL.lower(), NAME, "912345678", "912 345 678", "912.345.678"):
        assert secret not in out, f"{secret!r} in:\n{out}"
    assert LOCAL_ONLY not in out, f"locals rendered:\n{out}"
    # The failure itself stays readable: types, the frame, the masked values.
    for kept in ("DuplicateKeyError", "ValueError", "_fail_with_personal_data", "<masked:"):
        assert kept in out, f"{kept!r} missing from:\n{out}"


def test_a_json_exception_stays_one_line_of_json_with_its_traceback_as_data():
    out = _rendered("json", _log_with_structlog)
    (line,) = out.splitlines()
    record = orjson.loads(line)
    assert record["case_id"] == "case-1"
    assert record["name"].startswith("<masked:")
    assert [e["exc_type"] for e in record["exception"]] == ["ValueError", "DuplicateKeyError"]
    assert all("locals" not in frame for e in record["exception"] for frame in e["frames"])


def _console_lines(emit: Callable[[Any], None]) -> list[str]:
    logger = configure_logging("intake", level="INFO", fmt="console")
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)
    emit(logger)
    return stream.getvalue().splitlines()


def test_faststream_and_uvicorn_lines_read_like_ours_on_the_console():
    def emit(logger: Any) -> None:
        # FastStream logs through the logger it is given, its context in `extra`, and
        # through its own "faststream" stdlib logger; uvicorn through "uvicorn.error".
        logger.log(logging.INFO, "Received", extra={"topic": "contact.received", "group_id": "g"})
        logging.getLogger("faststream.access.kafka").warning(
            "Auto create topics is disabled.", extra={"topic": "case.classified"}
        )
        logging.getLogger("uvicorn.error").info(
            "Started server process [%d]", 42, extra={"color_message": "Started \x1b[36m%d"}
        )

    lines = _console_lines(emit)
    assert len(lines) == 3, lines
    received, auto_create, started = lines
    for line, level, event in (
        (received, "info", "Received"),
        (auto_create, "warning", "Auto create topics is disabled."),
        (started, "info", "Started server process [42]"),
    ):
        assert f"[{level}" in line and " intake " in line and event in line, line
        assert "{'" not in line and "color_message" not in line, line
    assert "topic=contact.received" in received and "group_id=g" in received
    assert "topic=case.classified" in auto_create


@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("DEBUG", True)])
def test_a_library_warning_expected_on_every_start_shows_only_when_debugging(level, shown):
    configure_logging("probe", level=level, fmt="json")
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)
    structlog.get_logger("lexcare.probe").warning(next(iter(EXPECTED_NOTICES)))
    logging.getLogger("faststream").warning(next(iter(EXPECTED_NOTICES)))
    logging.getLogger("faststream").warning("something unexpected")
    assert stream.getvalue().count("Make sure the topics exist") == (2 if shown else 0)
    assert "something unexpected" in stream.getvalue()


def test_an_error_aiokafka_retries_by_itself_is_a_warning_and_others_stay_errors():
    configure_logging("probe", level="INFO", fmt="json")
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)
    fetcher = logging.getLogger("aiokafka.consumer.fetcher")
    fetcher.error(
        "Failed fetch offsets from 1: [Error 6] NotLeaderForPartitionError: "
        "TopicPartition(topic='intake.customer', partition=0)"
    )
    logging.getLogger("aiokafka").error("Unable connect to node with id 1: [Errno 111]")
    fetcher.error("Unexpected error in fetcher routine")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["warning", "warning", "error"]
