"""Key escrow for the day the primary and its staff are gone: K-of-N SLIP-39 custodian shares.

After 2011, 大槌 and 陸前高田 lost not only their server rooms but the people who knew how
things worked. A repository whose only key is a passphrase in the head of a staff member
at the primary is lost with them. ``split`` makes a random 256-bit secret, adds a key slot
of kind ``escrow`` for it (the master key wrapped with Argon2id over that secret, like any
slot), and splits the secret with SLIP-39 (``shamir-mnemonic``) into N word lists, any K of
which rebuild it — printable, checksummed, for custodians' safes. Fewer than K shares reveal
nothing and are refused before any key slot is tried.

:class:`EscrowShares` and :class:`Passphrase` are the two credentials a repository command
accepts; ``open`` on either yields an unlocked repository through the same path.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from backup.errors import WrongPassword
from backup.keyslots import add_slot
from backup.opening import open_repository, unlock, unlocked_repository
from backup.repository import Repository, read_config
from dc.errors import N_, Message, UsageError
from storage.backend import Backend

ESCROW_KIND = "escrow"
SECRET_BYTES = 32  # SLIP-39 master secrets are 128..256 bits
#: words in one share of a SECRET_BYTES secret (SLIP-39: 7 metadata words + 26 for 256 bits)
SHARE_WORDS = 33


@dataclass(frozen=True)
class EscrowSplit:
    slot_id: str
    repository_id: str
    threshold: int
    shares: list[str]


def split_key(repo: Repository, *, shares: int, threshold: int, label: str = "escrow") -> EscrowSplit:
    """Add an escrow key slot and return its secret as ``shares`` SLIP-39 mnemonics, ``threshold`` to open."""
    import shamir_mnemonic

    if not 2 <= threshold <= shares <= 16:
        raise UsageError(
            N_("need 2 <= threshold <= shares <= 16 (got {threshold} of {shares})"), threshold=threshold, shares=shares
        )
    secret = secrets.token_bytes(SECRET_BYTES)
    groups = shamir_mnemonic.generate_mnemonics(1, [(threshold, shares)], secret)
    slot_id = add_slot(repo, secret, kind=ESCROW_KIND, label=label)
    return EscrowSplit(slot_id, repo.config.id, threshold, list(groups[0]))


def share_sheet(split: EscrowSplit, number: int, backend_url: str, custodian: str = "") -> str:
    """The share as text for ``--escrow FILE``: comments saying what it is, the words, the check code."""
    from backup.escrowwords import check_code

    mnemonic = split.shares[number - 1]
    words = mnemonic.split()
    lines = [
        "# bcpctl repository key escrow share — keep in a safe; never photograph or type into a chat",
        f"# custodian:     {custodian}" if custodian else "# custodian:     (write the name on the printed sheet)",
        f"# repository id: {split.repository_id}",
        f"# repository:    {backend_url}",
        f"# key slot:      {split.slot_id}",
        f"# share {number} of {len(split.shares)}; any {split.threshold} open the repository",
        "# restore: bcpctl ... --escrow FILE (once per share file)",
        "",
    ]
    lines += [" ".join(words[i : i + 10]) for i in range(0, len(words), 10)]
    lines += ["", f"# check: {check_code(mnemonic)}"]
    return "\n".join(lines) + "\n"


def prepare_share_dir(out_dir: Path) -> None:
    """A private directory for share sheets; one already holding sheets is refused (before any slot is made)."""
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    existing = sorted(p.name for p in out_dir.glob("share-*-of-*.*"))
    if existing:
        raise UsageError(
            N_("{out_dir} already holds shares ({existing}); use an empty directory"),
            out_dir=out_dir,
            existing=existing[0],
        )


@dataclass(frozen=True)
class SheetFiles:
    files: list[str]
    #: why no PDF was printed (no Chromium), or ``None`` when every sheet has its PDF
    pdf_unavailable: str | None


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_share_sheets(
    split: EscrowSplit, out_dir: Path, backend_url: str, custodians: Sequence[str] = ()
) -> list[str]:
    """``share-I-of-N.txt`` per custodian (what ``--escrow FILE`` reads), created 0600 and never over a file."""
    _check_custodians(split, custodians)
    files = []
    for number in range(1, len(split.shares) + 1):
        path = out_dir / f"share-{number}-of-{len(split.shares)}.txt"
        custodian = custodians[number - 1] if custodians else ""
        _write_private(path, share_sheet(split, number, backend_url, custodian))
        files.append(str(path))
    return files


def _check_custodians(split: EscrowSplit, custodians: Sequence[str]) -> None:
    if custodians and len(custodians) != len(split.shares):
        raise UsageError(
            N_("{n_custodians} custodian names for {n_shares} shares; give one per share"),
            n_custodians=len(custodians),
            n_shares=len(split.shares),
        )


def write_printable_sheets(
    split: EscrowSplit,
    out_dir: Path,
    backend_url: str,
    *,
    made_at: datetime,
    custodians: Sequence[str] = (),
    contact: str = "",
    pdf: bool = True,
) -> SheetFiles:
    """Per custodian the printable sheet in Japanese, ``share-I-of-N.html`` and ``.pdf`` (printed by a
    headless Chromium), created 0600 and never over a file. Without a Chromium the PDFs are skipped
    and the reason returned: the HTML prints from any browser."""
    from backup.escrowsheet import Sheet, sheet_html
    from dc.printing import PrintUnavailable, print_to_pdf

    _check_custodians(split, custodians)
    total = len(split.shares)
    files: list[str] = []
    unavailable = None if pdf else "not asked for (--no-pdf)"
    for number in range(1, total + 1):
        stem = out_dir / f"share-{number}-of-{total}"
        sheet = Sheet(
            number=number,
            total=total,
            threshold=split.threshold,
            mnemonic=split.shares[number - 1],
            repository_id=split.repository_id,
            repository_url=backend_url,
            slot_id=split.slot_id,
            made_at=made_at,
            custodian=custodians[number - 1] if custodians else "",
            contact=contact,
        )
        _write_private(stem.with_suffix(".html"), sheet_html(sheet))
        files.append(str(stem.with_suffix(".html")))
        if unavailable is None:
            try:
                print_to_pdf(stem.with_suffix(".html"), stem.with_suffix(".pdf"))
                files.append(str(stem.with_suffix(".pdf")))
            except PrintUnavailable as exc:
                unavailable = exc.message
    return SheetFiles(files, unavailable)


def read_share(path: str | Path) -> str:
    """The mnemonic in a share file as a custodian typed it (``#`` lines ignored; spacing, width,
    case and the sheet's numbering forgiven; a mistake named by its position: :mod:`backup.escrowwords`)."""
    from backup.escrowwords import read_typed_share
    from dc.secrets import read_secret_text

    text = read_secret_text(path, "escrow share")
    return read_typed_share(text, f"escrow share {path}", expected_length=SHARE_WORDS)


def combine_shares(mnemonics: Sequence[str]) -> bytes:
    """The escrow secret from K shares; a clear refusal for too few, mixed or mistyped shares.

    ``shamir_mnemonic`` errors quote the first words of a share, so they are never passed on.
    """
    import shamir_mnemonic
    from shamir_mnemonic.share import Share

    parsed = []
    for number, mnemonic in enumerate(mnemonics, start=1):
        try:
            parsed.append(Share.from_mnemonic(mnemonic))
        except shamir_mnemonic.MnemonicError:
            raise UsageError(
                N_("escrow share {number} is not a valid SLIP-39 share (mistyped word or checksum)"), number=number
            ) from None
    if len({s.identifier for s in parsed}) > 1:
        raise UsageError(N_("the escrow shares come from different splits; use shares of one split"))
    if len({s.index for s in parsed}) < len(parsed):
        raise UsageError(N_("the same escrow share was given twice"))
    needed = parsed[0].member_threshold
    if len(parsed) < needed:
        raise WrongPassword(
            N_("{n_parsed} escrow share(s) given, {needed} needed to open the repository"),
            n_parsed=len(parsed),
            needed=needed,
        )
    try:
        # SLIP-39 combines exactly a threshold's worth of shares; extras add nothing.
        return shamir_mnemonic.combine_mnemonics(list(mnemonics[:needed]))
    except shamir_mnemonic.MnemonicError:
        raise WrongPassword(
            N_("the escrow shares do not combine (damaged share or shares of different splits)")
        ) from None


@contextmanager
def open_repository_with_shares(
    backend: Backend, share_files: Sequence[str | Path], *, sync: bool = True, manifest_key: str | None = None
) -> Iterator[Repository]:
    """Unlock ``backend``'s repository from K share files, trying escrow key slots only.

    ``manifest_key``: the site's pinned manifest key, if configured (the staff-loss path runs
    on a machine that never unlocked this repository, so nothing else vouches for a slot).
    """
    secret = combine_shares([read_share(path) for path in share_files])
    config, raw = read_config(backend)
    unlocked = unlock(
        backend,
        secret,
        config,
        raw,
        kinds=(ESCROW_KIND,),
        refusal=Message(N_("no escrow key slot of {url} opens with these shares"), url=backend.url),
        manifest_key=manifest_key,
    )
    # escrow holders are key holders: they sign like anyone who changes state
    with unlocked_repository(backend, config, raw, unlocked, sync=sync, sign_on_close=True) as repo:
        yield repo


class Credentials(Protocol):
    """How a command unlocks a repository: a passphrase or escrow shares."""

    def open(self, backend: Backend, *, sync: bool = True) -> AbstractContextManager[Repository]: ...


@dataclass(frozen=True)
class Passphrase:
    file: str | None = None

    def open(self, backend: Backend, *, sync: bool = True) -> AbstractContextManager[Repository]:
        from dc.secrets import read_password

        return open_repository(backend, read_password(file=self.file), sync=sync)


@dataclass(frozen=True)
class EscrowShares:
    files: tuple[str, ...]

    def open(self, backend: Backend, *, sync: bool = True) -> AbstractContextManager[Repository]:
        return open_repository_with_shares(backend, self.files, sync=sync)


def credentials(password_file: str | None = None, escrow: Sequence[str] = ()) -> Credentials:
    """Escrow shares when any are given (the staff-loss path never reads a passphrase), else a passphrase."""
    if escrow and password_file:
        raise UsageError(N_("give either --escrow share files or --password-file, not both"))
    return EscrowShares(tuple(escrow)) if escrow else Passphrase(password_file)
