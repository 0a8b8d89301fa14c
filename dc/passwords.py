"""Operator passwords, stored only as Argon2id PHC strings (RFC 9106, OWASP's first choice).

The parameters travel inside each stored string, so raising the cost later only affects new
passwords. An unknown account is checked against a dummy hash so that the response time does
not tell an attacker which account names exist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from dc.errors import N_


@dataclass(frozen=True)
class Cost:
    memory_kib: int = 19 * 1024  # OWASP minimum for Argon2id: m=19 MiB, t=2, p=1
    iterations: int = 2
    lanes: int = 1


DEFAULT_COST = Cost()
MIN_LENGTH = 12
MAX_LENGTH = 1024


def check_strength(password: str) -> None:
    """Refuse passwords that are too short or absurdly long (NIST SP 800-63B §5.1.1)."""
    from dc.errors import UsageError

    if len(password) < MIN_LENGTH:
        raise UsageError(N_("the password must have at least {MIN_LENGTH} characters"), MIN_LENGTH=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise UsageError(N_("the password must have at most {MAX_LENGTH} characters"), MAX_LENGTH=MAX_LENGTH)


def hash_password(password: str, cost: Cost = DEFAULT_COST) -> str:
    kdf = Argon2id(
        salt=os.urandom(16),
        length=32,
        iterations=cost.iterations,
        lanes=cost.lanes,
        memory_cost=cost.memory_kib,
    )
    return kdf.derive_phc_encoded(password.encode())


_DUMMY: dict[str, str] = {}


def verify_password(password: str, encoded: str | None) -> bool:
    """Whether ``password`` matches; ``encoded=None`` (no such account) costs the same and fails."""
    if len(password) > MAX_LENGTH:
        return False
    if encoded is None:
        dummy = _DUMMY.setdefault("hash", hash_password("dummy password for timing"))
        _check(password, dummy)
        return False
    return _check(password, encoded)


def _check(password: str, encoded: str) -> bool:
    try:
        Argon2id.verify_phc_encoded(password.encode(), encoded)
    except (InvalidKey, ValueError):
        return False
    return True
