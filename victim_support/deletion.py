"""A partner's signed statement that every copy of a delivered bundle was deleted (保有期間の満了).

On the web the partner proves itself for the confirmation itself: a request signed with its
registered key, a token, or a token login. On the command line the person at the keyboard
is the data center's operator, not the partner, and a token proves nothing there (the
operator could have issued it). So the command line records a confirmation only from a
statement signed with the partner's registered Ed25519 key (``partners.<id>.verify_key``,
the key its signed web requests use), which the partner makes with standard tools::

    ssh-keygen -Y sign -n bcpctl-bundle-deletion -f koga-request.key statement.txt

The statement is UTF-8 text of exactly these lines (the note may be empty)::

    bcpctl-bundle-deletion/1
    request: exp-20261129-a1b2c3
    partner: koga
    deleted-by: 古河市 防災課 鈴木
    note: 保有期間満了につき全ての複製を消去

Every value the confirmation records comes from the signed bytes, so nothing the operator
types can change what the partner stated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from dc.config import Consortium
from dc.errors import N_, Message, UsageError
from victim_support import signing
from victim_support.delivery import Delivery, confirm_deletion
from victim_support.errors import SignatureInvalid
from victim_support.settings import ExportSettings

NAMESPACE = "bcpctl-bundle-deletion"
VERSION = "bcpctl-bundle-deletion/1"
KEYS = ("request", "partner", "deleted-by", "note")
#: a statement is five short lines and a signature a few hundred bytes; anything larger is not one
MAX_STATEMENT = 4096
MAX_SIGNATURE = 4096


@dataclass(frozen=True)
class DeletionStatement:
    request_id: str
    partner: str
    deleted_by: str
    note: str


def parse_statement(data: bytes) -> DeletionStatement:
    """The statement's values; refuses, naming the line, anything but the format above."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(N_("the deletion statement is not UTF-8 text")) from None
    lines = text.removesuffix("\n").split("\n")
    if not lines or lines[0].rstrip("\r") != VERSION:
        raise UsageError(N_("the deletion statement must begin with the line '{VERSION}'"), VERSION=VERSION)
    if len(lines) != 1 + len(KEYS):
        raise UsageError(
            N_("the deletion statement must have exactly the lines {VERSION}, {KEYS}: …"),
            VERSION=VERSION,
            KEYS=": …, ".join(KEYS),
        )
    values = []
    for number, (key, line) in enumerate(zip(KEYS, lines[1:], strict=True), start=2):
        name, sep, value = line.rstrip("\r").partition(":")
        if not sep or name != key:
            raise UsageError(N_("line {number} of the deletion statement must be '{key}: …'"), number=number, key=key)
        values.append(value.strip())
    return DeletionStatement(*values)


def read_signed(partner: str, config: Consortium, statement: Path, signature: Path) -> DeletionStatement:
    """The statement in ``statement``, provided ``signature`` is ``partner``'s registered key's signature over it."""
    spec = config.partners.get(partner)
    if spec is None:
        raise UsageError(
            N_("unknown partner '{partner}' (known: {partners})"),
            partner=partner,
            partners=", ".join(config.partners) or Message(N_("none")),
        )
    if not spec.verify_key:
        raise UsageError(
            N_("partner '{partner}' has no registered verify_key to check its signed statement against"),
            partner=partner,
        )
    data = read_bounded(statement, MAX_STATEMENT, "deletion statement")
    armored = read_bounded(signature, MAX_SIGNATURE, "signature").decode("ascii", errors="replace")
    try:
        signing.verify(signing.load_verify_key(spec.verify_key), data, armored, NAMESPACE)
    except SignatureInvalid:
        raise SignatureInvalid(
            N_(
                "{signature} is not a signature by partner '{partner}''s registered key over {statement} "
                "(sign it with: ssh-keygen -Y sign -n {NAMESPACE} -f KEY {name})"
            ),
            signature=signature,
            partner=partner,
            statement=statement,
            NAMESPACE=NAMESPACE,
            name=statement.name,
        ) from None
    found = parse_statement(data)
    if found.partner != partner:
        raise UsageError(
            N_("the statement is partner '{partner}''s, not '{partner2}''s"), partner=found.partner, partner2=partner
        )
    return found


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """A small file's bytes, refusing (exit 2) one that is missing, a directory or over ``limit``."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(N_("{what} {path} does not exist"), what=what, path=path) from None
    except IsADirectoryError:
        raise UsageError(N_("{what} {path} is a directory"), what=what, path=path) from None
    if len(data) > limit:
        raise UsageError(
            N_("{what} {path} is larger than {limit} bytes: not a {what}"), what=what, path=path, limit=limit
        )
    return data


def confirm_signed_deletion(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    request_id: str,
    *,
    partner: str,
    statement: Path,
    signature: Path,
    now: datetime,
) -> Delivery:
    """Record the partner's signed deletion statement for ``request_id``, audited as the web records it."""
    found = read_signed(partner, config, statement, signature)
    if found.request_id != request_id:
        raise UsageError(
            N_("the statement confirms the deletion of {request_id}, not of {request_id2}"),
            request_id=found.request_id,
            request_id2=request_id,
        )
    return confirm_deletion(
        engine,
        settings,
        request_id,
        partner,
        deleted_by=found.deleted_by,
        note=found.note,
        now=now,
        via="signed statement",
    )
