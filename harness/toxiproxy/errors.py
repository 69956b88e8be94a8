"""Typed API errors that carry their HTTP status, as Toxiproxy's `api.go` declares them."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def joined(self, detail: str) -> ApiError:
        """Toxiproxy's `joinError`: the generic message, a colon, then the specific cause."""
        return ApiError(f"{self.message}: {detail}", self.status)

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


BAD_REQUEST_BODY = ApiError("bad request body", 400)
MISSING_FIELD = ApiError("missing required field", 400)
PROXY_NOT_FOUND = ApiError("proxy not found", 404)
PROXY_ALREADY_EXISTS = ApiError("proxy already exists", 409)
INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)
TOXIC_ALREADY_EXISTS = ApiError("toxic already exists", 409)
TOXIC_NOT_FOUND = ApiError("toxic not found", 404)


class ProxyAlreadyStarted(Exception):
    """Not an API error: `POST /reset` ignores it, as Toxiproxy's `ErrProxyAlreadyStarted`."""
