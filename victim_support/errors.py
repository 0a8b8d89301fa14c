"""Errors of the victim-support export, each with the exit code an operator can act on."""

from __future__ import annotations

from dc.errors import AuthError, ProblemFound, UsageError


class PolicyRejected(UsageError):
    """A request the law tables do not allow (exit 2); the message names the rule, ``reasons`` every rule."""

    def __init__(self, message: str, reasons: tuple[str, ...] = (), /, **params: object) -> None:
        super().__init__(message, **params)
        self.reasons = reasons


class RequestStateError(UsageError):
    """An action that the request's state forbids: approving a denied or expired request (exit 2)."""


class RequestNotFound(UsageError):
    """No such export request for this partner (exit 2): another partner's request is "not found" too."""


class BundleGone(UsageError):
    """A delivered bundle that may no longer be served: past its retention, or its deletion confirmed (exit 2)."""


class RegistryError(ProblemFound):
    """The resident registry (or its snapshot) cannot be read or does not look like one (exit 1)."""


class BundleRejected(ProblemFound):
    """A bundle that is malformed, tampered with or expired; nothing was written (exit 1)."""


class SignatureInvalid(AuthError):
    """The envelope's signature does not verify with the given key (exit 3)."""


class WrongRecipient(AuthError):
    """The bundle is not encrypted to the given identity (exit 3)."""


class RequestTampered(ProblemFound):
    """A request whose row no longer matches what its audit chain records and its approvers signed (exit 1)."""


class AuditChainBroken(ProblemFound):
    """The audit log's hash chain does not verify; the message names the first bad entry (exit 1)."""


class NoteRejected(UsageError):
    """A returned PFIF note document that is malformed or not PFIF 1.4; nothing was recorded (exit 2)."""
