"""Domain exceptions. Each carries an HTTP status and a stable code (docs/errors.md);
geoapi.api.errors maps them to one response shape. Raise them where the problem is found."""

from __future__ import annotations

from typing import Any


class GeoapiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class BadRequestError(GeoapiError):
    status, code = 400, "bad_request"


class NotFoundError(GeoapiError):
    status, code = 404, "not_found"


class LayerNotFoundError(NotFoundError):
    code = "layer_not_found"


class FeatureNotFoundError(NotFoundError):
    code = "feature_not_found"


class ValidationFailedError(GeoapiError):
    status, code = 422, "validation_failed"


class ConflictError(GeoapiError):
    status, code = 409, "conflict"


class PreconditionFailedError(GeoapiError):
    status, code = 412, "precondition_failed"


class UnauthorizedError(GeoapiError):
    status, code = 401, "unauthorized"


class ForbiddenError(GeoapiError):
    status, code = 403, "forbidden"


class PayloadTooLargeError(GeoapiError):
    status, code = 413, "payload_too_large"


class DatabaseUnavailableError(GeoapiError):
    status, code = 503, "database_unavailable"
