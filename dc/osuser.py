"""Who the process runs as: the account of the real user id, never what the environment claims.

``getpass.getuser()`` reads ``$LOGNAME``/``$USER`` first, which anyone sets at will
(``LOGNAME=ito bcpctl …``). Audit entries, approvals and key slot labels record the account
the kernel says runs the process, so that what they record is a fact, not a claim.
"""

from __future__ import annotations

import os
import pwd


def os_user() -> str:
    """The real uid's account name, or the uid as a number when it has no passwd entry (containers)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
