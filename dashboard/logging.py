"""Log records with credentials redacted: one-line JSON (``LOG_FORMAT=json``) for log shippers,
or plain lines (``LOG_FORMAT=plain``, the default) for a terminal.

Redaction works on the rendered text, not on known call sites: an exception from urllib3 or
botocore can quote a request's headers, and a careless ``logger.info("%s", headers)`` anywhere
must not leak a bearer token, an API token or AWS keys into a log store.

Messages quote names, annotations and errors from clusters and AWS. JSON escapes every control
and non-ASCII character; a plain line shows them as visible escapes (`bindings.textsafe`), so
an ANSI sequence cannot rewrite the terminal tailing the log, a bidi override cannot reverse a
name, and a newline in a value cannot forge a log line of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any

from bindings.textsafe import visible, visible_markup

REDACTED = "[REDACTED]"
# Bearer/Basic credentials, key=value / "key": "value" pairs whose key names a secret, and AWS keys.
_PATTERNS = (
    re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(
        r"(?i)([\"']?[\w-]*(?:authorization|token|secret|password|passwd|api[_-]?key|credential|"
        r"session[_-]?id|cookie)[\w-]*[\"']?\s*[:=]\s*)(?:[\"'][^\"']*[\"']|[^\s,;}&]+)"
    ),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
)
_SECRET_KEY = re.compile(r"(?i)authorization|token|secret|password|api[_-]?key|credential|cookie")
# Attributes every LogRecord has; anything else was passed with `extra=` and is worth keeping.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    """`text` with credentials replaced by ``[REDACTED]``."""
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _PATTERNS[2].sub(REDACTED, text)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            # Django attaches the request object to some records: its repr is noise and may hold headers.
            if key == "request":
                value = f"{getattr(value, 'method', '')} {getattr(value, 'path', '')}".strip()
            entry[key] = REDACTED if _SECRET_KEY.search(key) else _jsonable(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class PlainFormatter(logging.Formatter):
    """The plain format, redacted, with control and format characters shown as escapes: in the
    message, newlines too (one record, one line); in a traceback, its own line breaks kept."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = visible(redact(record.message))
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return visible_markup(redact(super().formatException(ei)))


def _jsonable(value: Any) -> Any:
    """Plain JSON values pass (strings redacted); anything else becomes its redacted str()."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(json.dumps(value, default=str)) if isinstance(value, dict | list) else redact(str(value))
