"""One base error with a code and an HTTP status; every domain failure is a subclass.

Services raise these; the API maps them to `{"error": {"code", "message"}}` in one handler, and
activities turn them into Temporal `ApplicationError`s. Messages say what happened and what to do.
"""

from __future__ import annotations


class CustodyError(Exception):
    """Base of every expected failure. `code` is stable (snake_case); `message` is for people."""

    code: str = "custody_error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class ConfigurationError(CustodyError):
    code = "configuration_error"
    status = 500


class BadRequest(CustodyError):
    code = "bad_request"
    status = 400


class Unauthenticated(CustodyError):
    code = "unauthenticated"
    status = 401


class Forbidden(CustodyError):
    code = "forbidden"
    status = 403


class NotFound(CustodyError):
    code = "not_found"
    status = 404


class Conflict(CustodyError):
    code = "conflict"
    status = 409


class Unprocessable(CustodyError):
    code = "unprocessable"
    status = 422


class TooManyRequests(CustodyError):
    code = "too_many_requests"
    status = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(CustodyError):
    """A dependency is down, slow or saturated: nothing was changed, and the same call may succeed
    after `retry_after_s` (sent as Retry-After)."""

    code = "service_unavailable"
    status = 503

    def __init__(self, message: str, *, retry_after_s: int = 30, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class InsufficientStorage(CustodyError):
    """The evidence store has no room for this file; nothing was kept."""

    code = "insufficient_storage"
    status = 507


class Gone(CustodyError):
    code = "gone"
    status = 410


class PayloadTooLarge(CustodyError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(CustodyError):
    code = "unsupported_media_type"
    status = 415
