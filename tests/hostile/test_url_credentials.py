"""Hostile finding 4: a password inside a repository URL is printed back when it sits anywhere but
the place the parser looks for it.

``s3://KEY:SECRET@bucket/…`` and ``sftp://user:PASSWORD@…`` are refused without echoing the
secret ("credentials do not belong in the URL"). But ``?endpoint=http://user:PASSWORD@host``
is accepted and the whole endpoint, password included, is printed in every error ("no S3
credentials for …", "cannot reach S3 endpoint http://user:PASSWORD@…"), which ends up in the
journal of the timer that runs it; ``file://user:PASSWORD@/path`` is echoed the same way.
Userinfo is refused wherever it appears in a repository URL (exit 2), and no message repeats it.
"""

from __future__ import annotations

import pytest

from tests.conftest import Cli

SECRET = "TOPSECRETPW"


@pytest.mark.parametrize(
    "url",
    [
        f"s3://bucket/prefix?endpoint=http://u:{SECRET}@127.0.0.1:1",
        f"s3://bucket/prefix?endpoint=http://u:{SECRET}@127.0.0.1:1&region=x",
        f"file://u:{SECRET}@/tmp/x",
    ],
)
@pytest.mark.parametrize("command", [("snapshots",), ("repo", "init"), ("verify-offsite",)])
def test_a_password_in_a_repository_url_is_refused_and_never_repeated(
    cli: Cli, url: str, command: tuple[str, ...]
) -> None:
    for aws in ({}, {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}):
        done = cli(*command, "--repo", url, env=aws, timeout=120)
        assert SECRET not in done.stdout + done.stderr, done.stderr
        assert done.returncode == 2, done.stderr
