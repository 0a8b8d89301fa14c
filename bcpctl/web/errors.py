"""Errors of the web surface, each mapped to one HTTP status by :mod:`bcpctl.web.problems`."""

from __future__ import annotations

from dc.errors import AuthError, UsageError


class NotFound(UsageError):
    """No such resource for this caller (HTTP 404): another partner's request is "not found" too."""


class Forbidden(AuthError):
    """Authenticated, but the role or partner does not allow this (HTTP 403)."""


class Conflict(UsageError):
    """The resource's state forbids this now (HTTP 409)."""


class TooManyRequests(UsageError):
    """Rate limit hit (HTTP 429); ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: float, /, **params: object) -> None:
        super().__init__(message, **params)
        self.retry_after = retry_after
