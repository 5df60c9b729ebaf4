"""Secrets out of logs: consent and sign-in link tokens, bearer tokens, JWTs and password-like query
values are replaced by `[redacted]` before any log record is written.

Why a logging filter and not care at each call site: the token is part of the URL an owner follows
(`/consent/<token>`), so every layer that logs a path (the access log, an unhandled-error line, a
library's warning) would leak it. A filter on the loggers and handlers that write the API's and the
worker's logs catches them all in one place.

Only the standard library here: the API, the worker and the launcher all install it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "[redacted]"

#: Routes whose next path segment is a secret (a consent link, a resident's sign-in link). A route
#: with `{token}` in its path must start with one of these (tests/integration/test_log_redaction.py
#: checks every route of the app).
TOKEN_PATHS = ("/consent/", "/resident/link/")

#: Query or form keys whose value is a secret.
SECRET_KEYS = ("token", "access_token", "refresh_token", "password", "secret", "key", "code", "csrf")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile("(" + "|".join(re.escape(p) for p in TOKEN_PATHS) + r")[^/\s?#\"']+"),
        r"\1" + REDACTED,
    ),
    (
        re.compile(r"(?i)([?&;](?:" + "|".join(SECRET_KEYS) + r")=)[^&;\s\"'#]*"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    # A JWT anywhere: base64url header (always starting "eyJ", i.e. '{"'), payload, signature.
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
)

#: Loggers whose records the API and the worker write, with their descendants.
LOGGER_PREFIXES = ("uvicorn", "custody", "api", "fastapi", "starlette", "temporalio", "mail.log")


def redact(text: str) -> str:
    """`text` with every secret it carries replaced by `[redacted]`."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_arg(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (int, float, bool)):
        return value  # keeps %d and %f formatting working
    shown = str(value)
    cleaned = redact(shown)
    return cleaned if cleaned != shown else value


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, arguments and traceback text without secrets; never drops it.

    Arguments are redacted one by one (not merged into the message) because formatters such as
    uvicorn's access formatter unpack `record.args` by position.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_custody_redacted", False):
            return True
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._custody_redacted = True
        return True


_FILTER = RedactSecrets()


def _add(target: logging.Filterer) -> None:
    if not any(isinstance(f, RedactSecrets) for f in target.filters):
        target.addFilter(_FILTER)


def install(extra_loggers: Iterable[str] = ()) -> None:
    """Put the filter on every logger of `LOGGER_PREFIXES` that exists now (records are redacted
    where they are made, so every handler they propagate to gets the clean copy), on those loggers'
    and the root logger's handlers (which covers loggers created later), and on `extra_loggers`.
    Calling it again adds nothing twice."""
    names = {"uvicorn.access", "uvicorn.error", *LOGGER_PREFIXES, *extra_loggers}
    for name in list(logging.root.manager.loggerDict):
        if any(name == p or name.startswith(p + ".") for p in LOGGER_PREFIXES):
            names.add(name)
    loggers = [logging.getLogger(n) for n in sorted(names)] + [logging.getLogger()]
    for logger in loggers:
        _add(logger)
        for handler in logger.handlers:
            _add(handler)
