"""Log lines a machine can read: one JSON object a line, carrying the ids that tie a line to an HTTP
request, a case, a footage request, a workflow and an activity.

Why the standard library and not structlog: every line that matters here comes from the stdlib
`logging` calls of uvicorn, Temporal's SDK and custody itself, and custody/redact.py already cleans
those records with a `logging.Filter`. A formatter on the same records gives JSON for all of them
with no second logging pipeline to configure, no new dependency, and the redaction applying unchanged.
structlog would only pay off if custody's own code logged key-value events, which it barely does.

Context travels in `contextvars`: the API's middleware (api/observe.py) binds `http_request_id` and
route ids, the worker's activity interceptor (activities/observe.py) binds `workflow_id`, `activity`
and the request's ids. asyncio tasks and the threads Starlette and Temporal's SDK run sync code in
copy the context, so a line logged anywhere below carries them. Records made by Temporal's own
loggers carry `temporal_workflow` / `temporal_activity` extras; those are read too.

Only ids go into the context, never names, emails or addresses: a log is read by more people than
the registry is.

Only the standard library here (custody/ is the domain layer): the API, the worker and the launcher
all use it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Literal

from custody import redact

LogFormat = Literal["json", "text"]

#: The ids a log line may carry, in the order text lines show them.
FIELDS = ("http_request_id", "case_id", "request_id", "workflow_id", "activity")

_VARS: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"custody_log_{name}", default=None) for name in FIELDS
}


def bind(**ids: str | None) -> dict[str, Token[str | None]]:
    """Set ids for the rest of the current context (task or thread); None leaves one unchanged.
    Returns the tokens `unbind` takes to restore the previous values."""
    tokens: dict[str, Token[str | None]] = {}
    for name, value in ids.items():
        if name not in _VARS:
            raise ValueError(f"unknown log context field {name!r}; known: {', '.join(FIELDS)}")
        if value is not None:
            tokens[name] = _VARS[name].set(str(value))
    return tokens


def unbind(tokens: Mapping[str, Token[str | None]]) -> None:
    for name, token in tokens.items():
        _VARS[name].reset(token)


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """`bind` for the duration of a `with` block."""
    tokens = bind(**ids)
    try:
        yield
    finally:
        unbind(tokens)


def context() -> dict[str, str]:
    """The ids bound in the current context."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


def _ids_of(record: logging.LogRecord) -> dict[str, str]:
    """The record's ids: explicit `extra=` values first, then Temporal's extras, then the context."""
    ids = context()
    workflow = getattr(record, "temporal_workflow", None)
    if isinstance(workflow, dict) and workflow.get("workflow_id"):
        ids.setdefault("workflow_id", str(workflow["workflow_id"]))
    act = getattr(record, "temporal_activity", None)
    if isinstance(act, dict):
        if act.get("workflow_id"):
            ids.setdefault("workflow_id", str(act["workflow_id"]))
        if act.get("activity_type"):
            ids.setdefault("activity", str(act["activity_type"]))
    for name in FIELDS:
        value = getattr(record, name, None)
        if isinstance(value, str) and value:
            ids[name] = value
    return {name: redact.redact(ids[name]) for name in FIELDS if name in ids}


def rfc3339(created: float) -> str:
    """A record's time as RFC 3339 with an offset (UTC, milliseconds): 2026-11-28T13:00:31.123+00:00."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the ids known, and for uvicorn's access
    log the method, path (redacted) and status as fields of their own.

    Every string is passed through custody.redact again: the RedactSecrets filter cleans records where
    they are made, and this keeps a record that reached the handler some other way clean too.
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact.redact(record.getMessage()),
        }
        out.update(_ids_of(record))
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            _client, method, path, _version, status = record.args
            out["method"], out["path"] = str(method), redact.redact(str(path))
            if isinstance(status, int):
                out["status"] = status
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = redact.redact(record.exc_text)
        if record.stack_info:
            out["stack"] = redact.redact(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For a person at a terminal (`make run`): time, level, logger, message, then the ids known as
    `key=value`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact.redact(super().format(record))
        ids = _ids_of(record)
        if ids:
            line += " [" + " ".join(f"{k}={v}" for k, v in ids.items()) + "]"
        return line


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(fmt: LogFormat, level: str | int = "INFO") -> None:
    """Send every record to stderr in `fmt`, through the secret redaction (the worker, and the API
    when it is served without api/serve.py's uvicorn config)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    redact.install()
