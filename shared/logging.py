"""structlog set up once: JSON off a terminal, pretty on one, personal data masked."""

import hashlib
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

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
_PHONE = re.compile(r"(?<![\w.:/-])(?:\+?84|0)(?:[\s.-]?\d){8,10}(?![\w])")


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


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask personal data in every field and in the message itself."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask(key, value) if key != "event" else mask_text(str(value))
    return event_dict


def _faststream_extra(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # FastStream passes its context as `extra`; flatten it into the line.
    extra = event_dict.pop("extra", None)
    if isinstance(extra, dict):
        for key, value in extra.items():
            event_dict.setdefault(key, value)
    return event_dict


def _json_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode()


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
        _faststream_extra,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        mask_personal_data,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_dumps)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    if use_json:
        shared.append(structlog.processors.dict_tracebacks)
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return structlog.get_logger()
