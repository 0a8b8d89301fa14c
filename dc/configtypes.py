"""The value types ``bcpctl.yaml`` is made of: durations, identifiers, 地方公共団体コード,
connection strings that never hold a password, command lines, approver names and credentials.

Apart from :mod:`dc.config` so that the parts of the configuration that live in their own
modules (:mod:`dc.sourcespec`, the settings of ``failover``, ``victim_support`` and the web)
share one definition of each without importing the whole consortium model.
"""

from __future__ import annotations

import re
import shlex
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from dc.duration import parse_duration
from dc.lgcodes import check_digit_problem

Seconds = Annotated[int, BeforeValidator(parse_duration)]
Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


def _check_lg_code(code: str) -> str:
    if problem := check_digit_problem(code):
        raise ValueError(problem)
    return code


LgCode = Annotated[str, BeforeValidator(lambda v: _check_lg_code(str(v)))]


def dsn_holds_password(dsn: str) -> bool:
    """Whether a connection string carries a password: URL userinfo (``user:pw@``), a
    ``password=`` query parameter, or libpq's ``password=`` keyword form."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        query = parse_qsl(parts.query, keep_blank_values=True)
        return bool(parts.password) or any(key.lower() == "password" for key, _ in query)
    return re.search(r"(?:^|\s)password\s*=", dsn, re.IGNORECASE) is not None


def _refuse_password(dsn: str) -> str:
    # DESIGN "Configuration": secrets never sit in this file, only where to find them.
    if dsn_holds_password(dsn):
        raise ValueError("the DSN holds a password; use PGPASSWORD or a .pgpass file instead")
    return dsn


#: a connection string for a database: never with a password in it
Dsn = Annotated[str, AfterValidator(_refuse_password)]


def _check_command(text: str) -> str:
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"not a command line: {exc}") from None
    if not argv:
        raise ValueError("must name a command")
    return text


#: a command line bcpctl runs without a shell (split as a POSIX shell would)
Command = Annotated[str, AfterValidator(_check_command)]


#: the form of a PFIF home domain (a DNS name), the first part of every PFIF record id
PFIF_DOMAIN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"


def _check_credential(text: str) -> str:
    # imported here: dc.approvers brings in cryptography, which loading a configuration without
    # approvers (every command) should not pay for
    from dc.approvers import parse_credential

    parse_credential(text)
    return str(text).strip()


#: a person who may approve exports or a failover (the name the rest of the file uses).
ApproverName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s,]+$")]
#: that person's public verifier from ``bcpctl approver enroll`` (never the secret itself).
ApproverCredential = Annotated[str, AfterValidator(_check_credential)]
