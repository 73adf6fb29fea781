"""The one exception tree, shared by the server and the SDK.

    BudError
    ├── ValidationError        422  input that breaks a rule (bad filter, cyclic DAG, bad params)
    │   └── FilterError             a filter clause that cannot be compiled (carries the path)
    ├── BadRequestError        400  a request the server cannot read at all
    ├── AuthenticationError    401
    ├── PermissionDeniedError  403
    ├── NotFoundError          404
    ├── ConflictError          409  a state change not allowed now (retry a running execution)
    ├── PayloadTooLargeError   413
    ├── RateLimitedError       429
    ├── ServerError            500
    └── TransportError              the SDK could not reach the server at all

Every error carries a machine-readable ``code``, a human ``message`` that names the problem
and where it is, and ``details`` (a JSON-able dict, e.g. ``{"path": "steps[1].depends_on"}``).
The server renders them as ``{"error": {"code", "message", "details"}}``; the SDK raises
the same classes from that body.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BudError",
    "ConflictError",
    "FilterError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "ValidationError",
    "error_for_code",
]


class BudError(Exception):
    """Something went wrong in Bud Pipelines."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "error"

    def __init__(
        self, message: str | None = None, *, details: dict[str, Any] | None = None
    ) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.details: dict[str, Any] = details or {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationError(BudError):
    """The input breaks a rule."""

    status_code = 422
    code = "validation_error"


class FilterError(ValidationError):
    """The filter cannot be compiled."""

    code = "invalid_filter"

    def __init__(
        self, message: str, *, path: str = "", details: dict[str, Any] | None = None
    ) -> None:
        self.path = path
        where = f"filter.{path}" if path else "filter"
        super().__init__(f"{where}: {message}", details={"path": where, **(details or {})})


class BadRequestError(BudError):
    """The request cannot be read."""

    status_code = 400
    code = "bad_request"


class AuthenticationError(BudError):
    """A valid API key is required."""

    status_code = 401
    code = "unauthenticated"


class PermissionDeniedError(BudError):
    """This API key may not do that."""

    status_code = 403
    code = "permission_denied"


class NotFoundError(BudError):
    """No such object."""

    status_code = 404
    code = "not_found"


class ConflictError(BudError):
    """The object is not in a state that allows this."""

    status_code = 409
    code = "conflict"


class PayloadTooLargeError(BudError):
    """The request body is larger than the server accepts."""

    status_code = 413
    code = "payload_too_large"


class RateLimitedError(BudError):
    """Too many requests."""

    status_code = 429
    code = "rate_limited"


class ServerError(BudError):
    """The server failed to handle the request."""

    status_code = 500
    code = "server_error"


class TransportError(BudError):
    """The server could not be reached."""

    status_code = 0
    code = "transport_error"


_BY_CODE: dict[str, type[BudError]] = {
    cls.code: cls
    for cls in (
        ValidationError,
        FilterError,
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        PayloadTooLargeError,
        RateLimitedError,
        ServerError,
    )
}
_BY_STATUS: dict[int, type[BudError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitedError,
}


def error_for_code(code: str | None, status: int) -> type[BudError]:
    """The exception class for a server error body: by code, else by HTTP status."""
    if code and code in _BY_CODE:
        return _BY_CODE[code]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else BudError
