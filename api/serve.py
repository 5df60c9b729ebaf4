"""`python -m api.serve`: the API under uvicorn, configured from custody's settings.

Why not plain `uvicorn api.app:app`: uvicorn's defaults suit a development box, not a public site.
It believes `X-Forwarded-For` from 127.0.0.1 (anyone on the host, or any local proxy, could pick the
client address the login throttle counts), it has no deadline for a request's headers, and its access
log would write consent-link tokens. Here:

- forwarded headers are believed only from `CUSTODY_TRUSTED_PROXIES` (none by default: proxy headers
  off, the client is the TCP peer);
- a request's headers must arrive within `CUSTODY_HEADER_READ_TIMEOUT_S` of the connection opening
  or of their first byte, and be at most `CUSTODY_MAX_HEADER_BYTES` (408 / 431, then the connection
  is closed); idle keep-alive connections close after `CUSTODY_KEEP_ALIVE_TIMEOUT_S`;
- every log record goes through custody.redact (tokens, JWTs, passwords become `[redacted]`), and
  is written as JSON or text by `CUSTODY_LOG_FORMAT` (custody/logs.py).

The slow-body deadline (`CUSTODY_BODY_READ_TIMEOUT_S`) is an ASGI middleware in the app itself
(api/bodytimeout.py), so it holds however the app is served. The launcher, the Docker image and the
tests' live server all start the API through `server_config`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import logging.config
import sys
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from custody import redact
from custody.errors import ConfigurationError
from custody.settings import LogFormat, Settings, load_settings

log = logging.getLogger("custody.api")


def _raw_error(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def bounded_protocol(header_timeout_s: float, max_header_bytes: int) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a deadline and a size limit on each request's headers.

    uvicorn arms its keep-alive timer only after a response, so a connection that opens and then
    sends its headers a byte a minute (or nothing at all) would be held for ever. The clock starts
    when the connection opens and again at the first byte of each further request on it.
    """

    class BoundedHeaders(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _awaiting_headers = True
        _header_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._awaiting_headers, self._header_bytes = True, 0
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._awaiting_headers:
                self._header_bytes += len(data)
                if self._header_bytes > max_header_bytes and not self.transport.is_closing():
                    self._refuse(
                        431,
                        "Request Header Fields Too Large",
                        "headers_too_large",
                        f"The request line and headers exceed {max_header_bytes} bytes.",
                    )

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._awaiting_headers, self._header_bytes = True, 0
            if self._header_timer is None:
                self._arm()

        def on_headers_complete(self) -> None:
            self._awaiting_headers, self._header_bytes = False, 0
            self._disarm()
            super().on_headers_complete()

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if not self._awaiting_headers or self.transport.is_closing():
                return
            if self._header_bytes == 0 and self.cycle is None:
                self.transport.close()  # opened and never spoke: nobody to answer
                return
            self._refuse(
                408,
                "Request Timeout",
                "header_timeout",
                f"The request headers did not arrive within {header_timeout_s:g} s; send the request again.",
            )

        def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
            self._disarm()
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_raw_error(status, reason, code, message))
            self.transport.close()

    return BoundedHeaders


def log_config(level: str = "info", fmt: LogFormat = "text") -> dict[str, Any]:
    """uvicorn's logging setup with the redaction filter on every handler, and the app's own loggers
    (custody.*) written beside uvicorn's. `fmt` json: every line, the access log's included, is one
    JSON object with the request's ids (custody/logs.py); text: uvicorn's usual lines, for a person."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": "custody.redact.RedactSecrets"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    if fmt == "json":
        config["formatters"] = {
            "default": {"()": "custody.logs.JsonFormatter"},
            "access": {"()": "custody.logs.JsonFormatter"},
        }
    else:
        config["formatters"]["default"]["fmt"] = "%(asctime)s %(levelprefix)s %(name)s: %(message)s"
        config["formatters"]["access"]["fmt"] = (
            '%(asctime)s %(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'
        )
    config["root"] = {"handlers": ["default"], "level": level.upper()}
    return config


def server_config(
    app: Any,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    log_level: str = "info",
    access_log: bool = True,
    logging_config: dict[str, Any] | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration every way of serving the API shares (see the module docstring)."""
    proxies = ",".join(settings.trusted_proxies)
    return uvicorn.Config(
        app,
        host=host or settings.api_host,
        port=port if port is not None else settings.api_port,
        http=bounded_protocol(settings.header_read_timeout_s, settings.max_header_bytes),
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or "",  # never uvicorn's default of 127.0.0.1
        timeout_keep_alive=max(1, round(settings.keep_alive_timeout_s)),
        log_level=log_level,
        access_log=access_log,
        log_config=logging_config,
        server_header=False,
    )


def serve(
    *, host: str | None = None, port: int | None = None, access_log: bool = True, log_level: str = "info"
) -> None:
    """Serve the API until stopped (`custody serve` and `python -m api.serve` both land here).

    Outside dev mode the database must already be at this code's revision (`custody migrate`): the
    check runs before uvicorn starts, so a refusal is one clear line and exit status 1 (the app's
    lifespan checks again, for any other way of serving it)."""
    settings = load_settings()
    config = log_config(log_level, settings.logs_as)
    logging.config.dictConfig(config)  # before the app is built: its import-time loggers are kept
    from api.app import create_app
    from custody.db import create_db_engine, require_schema

    if settings.mode != "dev":
        engine = create_db_engine(settings.db_url, pool_size=1)
        try:
            require_schema(engine)
        finally:
            engine.dispose()
    server = uvicorn.Server(
        server_config(
            create_app(settings), settings, host=host, port=port, log_level=log_level,
            access_log=access_log, logging_config=config,
        )
    )  # fmt: skip
    redact.install()
    server.run()  # exits with status 3 if the app's startup fails


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="bind address (default CUSTODY_API_HOST)")
    parser.add_argument("--port", type=int, help="port (default CUSTODY_API_PORT)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log each request")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:
        serve(host=args.host, port=args.port, access_log=not args.no_access_log, log_level=args.log_level)
    except ConfigurationError as exc:
        print(f"custody serve: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
