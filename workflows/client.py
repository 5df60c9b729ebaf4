"""The one way every custody process connects to Temporal: the API, the worker (and its alert relay
and housekeeping, which use the worker's client), the tests and the benchmarks.

Not workflow code (workflows never import this module). Why one function: a cluster with TLS, mTLS
or Temporal Cloud's API key must be reached the same way by everything, from settings alone:
`CUSTODY_TEMPORAL_TLS`, `CUSTODY_TEMPORAL_CA_FILE`, `CUSTODY_TEMPORAL_CLIENT_CERT_FILE` /
`_KEY_FILE`, `CUSTODY_TEMPORAL_SERVER_NAME` and `CUSTODY_TEMPORAL_API_KEY` (sent as
`authorization: Bearer <key>`; implies TLS).

A refused certificate or credential is not retried: waiting would not fix it, so it fails at once
with a message naming the setting to check. A server that is not up yet is retried until the
deadline, as a worker started beside its server must.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from custody.errors import ConfigurationError
from custody.settings import Settings

#: Substrings of the core SDK's connection errors that mean "TLS or credentials refused".
_SERVER_CERT_REFUSED = ("InvalidCertificate", "UnknownIssuer", "NotValidForName", "invalid peer certificate")
_CREDENTIALS_REFUSED = ("code: Unauthenticated", "code: PermissionDenied")
#: What a plain-gRPC client sees from a TLS endpoint (the server drops the connection or the TLS
#: alert it sends is not HTTP/2).
_WANTS_TLS = ("connection closed", "h2 protocol error", "frame with invalid size")
_NOT_TLS = ("InvalidContentType", "CorruptMessage", "wrong version number", "record overflow")


class TemporalConnectError(ConfigurationError):
    """Temporal refused this client's TLS or credentials: a setting is wrong, retrying will not help."""

    code = "temporal_connect_refused"


def _pem(path: Path | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{setting}={path} cannot be read: {exc.strerror}.") from exc
    if b"-----BEGIN " not in data:
        raise ConfigurationError(f"{setting}={path} is not a PEM file (no '-----BEGIN' line).")
    return data


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """The TLS half of the connection: False (plain gRPC, the embedded dev server), True (TLS with
    the system's CAs) or a TLSConfig with our CA, client certificate and server name."""
    if not settings.temporal_uses_tls:
        return False
    ca = _pem(settings.temporal_ca_file, "CUSTODY_TEMPORAL_CA_FILE")
    cert = _pem(settings.temporal_client_cert_file, "CUSTODY_TEMPORAL_CLIENT_CERT_FILE")
    key = _pem(settings.temporal_client_key_file, "CUSTODY_TEMPORAL_CLIENT_KEY_FILE")
    if ca is None and cert is None and settings.temporal_server_name is None:
        return True
    return TLSConfig(
        server_root_ca_cert=ca,
        domain=settings.temporal_server_name,
        client_cert=cert,
        client_private_key=key,
    )


def explain(settings: Settings, error: BaseException) -> TemporalConnectError | None:
    """A TemporalConnectError saying which setting to check when `error` is a refused certificate
    or credential; None when it is not (the server may just not be up yet)."""
    text = str(error)
    where = f"Temporal at {settings.temporal_address}"
    if any(marker in text for marker in _SERVER_CERT_REFUSED):
        return TemporalConnectError(
            f"{where} presented a certificate this client does not trust ({_core_reason(text)}). Check "
            "CUSTODY_TEMPORAL_CA_FILE (the CA that signed the server's certificate) and "
            "CUSTODY_TEMPORAL_SERVER_NAME (the name in it)."
        )
    if any(marker in text for marker in _CREDENTIALS_REFUSED):
        what = (
            "CUSTODY_TEMPORAL_API_KEY"
            if settings.temporal_api_key is not None
            else "CUSTODY_TEMPORAL_CLIENT_CERT_FILE and CUSTODY_TEMPORAL_CLIENT_KEY_FILE (mTLS), or "
            "CUSTODY_TEMPORAL_API_KEY"
        )
        return TemporalConnectError(
            f"{where} refused this client's credentials ({_core_reason(text)}). Check {what}."
        )
    if any(marker in text for marker in _NOT_TLS) and settings.temporal_uses_tls:
        return TemporalConnectError(
            f"{where} does not speak TLS ({_core_reason(text)}). Unset CUSTODY_TEMPORAL_TLS and the "
            "other CUSTODY_TEMPORAL_* TLS settings, or point CUSTODY_TEMPORAL_HOST/PORT at the TLS endpoint."
        )
    if any(marker in text for marker in _WANTS_TLS) and not settings.temporal_uses_tls:
        return TemporalConnectError(
            f"{where} does not answer plain gRPC ({_core_reason(text)}); it may require TLS. Set "
            "CUSTODY_TEMPORAL_TLS=true (and CUSTODY_TEMPORAL_CA_FILE for a private CA)."
        )
    return None


def _core_reason(text: str) -> str:
    """The useful part of the core SDK's error text: the status message or the TLS error."""
    for start, end in (('message: "', '"'), ("error: ", " }")):
        if start in text:
            return text.split(start, 1)[1].split(end, 1)[0]
    return text[:200]


async def connect_temporal(
    settings: Settings, *, lazy: bool = False, timeout_s: float = 0, runtime: Runtime | None = None
) -> Client:
    """A client for `settings`' Temporal (address, namespace, TLS, API key).

    `lazy`: connect on the first call (the API: a service that is down fails that call fast, not
    start-up). `timeout_s`: keep retrying a server that does not answer for that long (the worker);
    TLS and credential refusals raise TemporalConnectError at once either way. `runtime`: the SDK
    runtime whose telemetry the client uses (the worker's Prometheus metrics); None: the default.
    """
    tls = temporal_tls(settings)
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                tls=tls,
                api_key=api_key,
                lazy=lazy,
                runtime=runtime,
            )
        except RuntimeError as exc:
            refused = explain(settings, exc)
            if refused is not None:
                raise refused from exc
            if loop.time() >= deadline:
                raise RuntimeError(
                    f"Temporal at {settings.temporal_address} did not answer"
                    + (f" within {timeout_s:.0f} s" if timeout_s else "")
                    + f": {_core_reason(str(exc))}"
                ) from exc
            await asyncio.sleep(1)
