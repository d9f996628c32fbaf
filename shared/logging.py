"""structlog set up once: JSON off a terminal, pretty on one, personal data masked."""

import hashlib
import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import faststream  # noqa: F401  (imported first: its import adds a handler we take back)
import orjson
import structlog
import structlog.tracebacks

PERSONAL_KEYS = frozenset(
    {
        "name",
        "phone",
        "email",
        "address",
        "message",
        "text",
        "summary",
        "comment",
        "note",
        "sender_id",
        "customer",
        "contact",
        "birth_date",
        "documents",
    }
)
"""Log fields whose values are personal data: always masked."""

# The look-behind lets a match start only where a run of local-part characters starts:
# without it a long run with no "@" (a 1 MB field in an error) is scanned once per
# character, quadratic time that froze a service's event loop for minutes.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A number glued to a word by ":" is a key's value ("phone:+84912345678", an identifier's
# _id in a duplicate-key error); after a digit or "." it is part of a time or an address.
_PHONE = re.compile(r"(?:(?<![\w.:/-])|(?<=[^\W\d_]:))(?:\+?84|0)(?:[\s.-]?\d){8,10}(?![\w])")


def pseudonym(value: object) -> str:
    """A short stable stand-in for a personal value, so log lines can still be correlated."""
    digest = hashlib.sha256(str(value).encode()).hexdigest()[:10]
    return f"<masked:{digest}>"


def mask_text(text: str) -> str:
    """Replace emails and Vietnamese phone numbers inside free text."""
    text = _EMAIL.sub(lambda m: pseudonym(m.group()), text)
    return _PHONE.sub(lambda m: pseudonym(m.group()), text)


def _mask(key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if key in PERSONAL_KEYS:
        return pseudonym(value)
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask("", v) for v in value]
    return mask_text(str(value))


def _mask_every_text(value: Any) -> Any:
    # A rendered traceback's keys are the renderer's ("name" is a function): mask text only.
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_every_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_every_text(v) for v in value]
    return value


_RENDERED_KEYS = frozenset({"event", "exception", "stack"})
"""Fields holding text rendered by structlog: the message, the traceback, the stack."""


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask personal data in every field, the message and the traceback.

    It must run after the exception is rendered (`exc_info` into `exception`): what is
    rendered after it is never masked.
    """
    for key, value in list(event_dict.items()):
        if key in _RENDERED_KEYS:
            event_dict[key] = _mask_every_text(value if key != "event" else str(value))
        else:
            event_dict[key] = _mask(key, value)
    return event_dict


def _library_extras(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # FastStream passes its context as `extra`: flatten it into the line, without its
    # empty defaults. uvicorn adds a `color_message` copy of the message: drop it.
    extra = event_dict.pop("extra", None)
    if isinstance(extra, dict):
        for key, value in extra.items():
            if value != "":
                event_dict.setdefault(key, value)
    event_dict.pop("color_message", None)
    return event_dict


EXPECTED_NOTICES = frozenset(
    {
        # FastStream, per subscriber, because the broker may not create topics: the
        # service's start (ensure_topics) has created them before any subscriber starts.
        "Auto create topics is disabled. Make sure the topics exist.",
    }
)
"""Library warnings expected on every healthy start: shown only at the DEBUG log level."""


class _HideExpectedNotices(logging.Filter):
    """Hide EXPECTED_NOTICES, ours or a library's, unless the log level is DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every other record."""
        event = record.msg.get("event") if isinstance(record.msg, dict) else record.getMessage()
        return event not in EXPECTED_NOTICES or logging.getLogger().isEnabledFor(logging.DEBUG)


RETRIED_BY_AIOKAFKA = (
    "NotLeaderForPartitionError",
    "LeaderNotAvailableError",
    "NodeNotReadyError",
    "GroupCoordinatorNotAvailableError",
    "NotCoordinatorForGroupError",
    "KafkaConnectionError",
    "Unable connect to node",
)
"""aiokafka errors it retries by itself (a partition whose leader is still being elected,
a broker restarting): logged at WARNING, since nothing is lost and nobody must act."""


class _DemoteRetriedKafkaErrors(logging.Filter):
    """aiokafka's ERROR records about failures it retries become WARNING records."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record; lower the level of the retried ones."""
        if record.levelno >= logging.ERROR and record.name.startswith("aiokafka"):
            message = record.getMessage()
            if any(name in message for name in RETRIED_BY_AIOKAFKA):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _json_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode()


def _exception_renderer(use_json: bool) -> Any:
    """Render `exc_info` into text (console) or data (JSON), never with frame locals."""
    if use_json:
        return structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
    return structlog.processors.format_exc_info


def _clock_time(value: object) -> str:
    return f"{str(value)[11:23]}Z"  # HH:MM:SS.mmm (UTC) of the ISO timestamp


def console_renderer(colors: bool) -> structlog.dev.ConsoleRenderer:
    """One line per event: time, level, service, event, then the fields as key=value."""
    renderer = structlog.dev.ConsoleRenderer(colors=colors, pad_event_to=28)
    styles = renderer.get_default_column_styles(colors)
    clock = structlog.dev.Column(
        "timestamp",
        structlog.dev.KeyValueColumnFormatter(
            key_style=None,
            value_style=styles.timestamp,
            reset_style=styles.reset,
            value_repr=_clock_time,
        ),
    )
    service = structlog.dev.Column(
        "service",
        structlog.dev.KeyValueColumnFormatter(
            key_style=None,
            value_style=styles.bright + styles.logger_name,
            reset_style=styles.reset,
            value_repr=str,
            width=8,
        ),
    )
    columns = [clock if c.key == "timestamp" else c for c in renderer.columns]
    at = next(i for i, c in enumerate(columns) if c.key == "level") + 1
    renderer.columns = [*columns[:at], service, *columns[at:]]
    return renderer


def _wants_colors() -> bool:
    # FORCE_COLOR / NO_COLOR: the conventions a parent (`make run`) uses to pass on its TTY.
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or sys.stderr.isatty()


def _route_libraries_to_root() -> None:
    # FastStream's import gives its "faststream" logger a handler of its own that prints
    # structlog's event dicts as Python reprs; its lines belong in ours.
    library = logging.getLogger("faststream")
    library.handlers.clear()
    library.propagate = True


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "auto") -> Any:
    """Configure structlog and stdlib logging for `service`; return the logger to share."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())

    def add_service(
        _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_service,
        _library_extras,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        _exception_renderer(use_json),
        mask_personal_data,  # last: after every piece of text is rendered
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_dumps)
        if use_json
        else console_renderer(_wants_colors())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(_HideExpectedNotices())
    handler.addFilter(_DemoteRetriedKafkaErrors())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _route_libraries_to_root()
    for noisy in ("aiokafka", "pymongo", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

    # Named, so that FastStream's calls through it reach the root handler whatever module
    # they come from (a name guessed from the caller would be one of FastStream's own).
    return structlog.get_logger(f"lexcare.{service}")
