"""The botocore client an :class:`~storage.s3.S3Backend` talks through, and where its credentials come from.

botocore's session (public, documented) rather than boto3's: the same client, without
importing boto3's resource and transfer layers on every CLI start. botocore is imported
when a backend is opened, so commands that never reach S3 do not pay for it.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from dc.errors import N_, AuthError, ConfigError
from storage.errors import NameMismatch
from storage.s3url import S3Location


def make_client(location: S3Location, *, connections: int, timeout: float) -> Any:
    """An S3 client for ``location``'s endpoint and region, credentials from the environment or its profile."""
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ProfileNotFound

    # Credentials come from the environment or a profile only: botocore would otherwise ask
    # the EC2 instance metadata endpoint (169.254.169.254) — traffic off this machine, and
    # meaningless for an on-premises gateway. Its documented switch, set before the session
    # resolves credentials; an operator who sets it otherwise decides for themselves.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    session = botocore.session.Session(profile=location.profile)
    try:
        credentials = session.get_credentials()
        region = location.region or session.get_config_variable("region") or "us-east-1"
    except ProfileNotFound:
        raise ConfigError(
            N_("AWS profile '{profile}' not found (see ~/.aws/config)"), profile=location.profile
        ) from None
    if credentials is None:
        raise AuthError(
            N_(
                "no S3 credentials for {url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or add "
                "profile=NAME to the URL"
            ),
            url=location.url,
        )
    client = session.create_client(
        "s3",
        endpoint_url=location.endpoint,
        region_name=region,
        config=Config(
            # Every body is signed with its SHA-256 (botocore's one pass over it), which the
            # server checks the bytes it receives against, on plain HTTP and TLS alike.
            s3={"addressing_style": "path", "payload_signing_enabled": True},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # a pool at least as large as the transfers in flight, or threads queue for sockets
            max_pool_connections=max(10, connections + 2),
            connect_timeout=5,
            read_timeout=timeout,
            # storage/retry.py owns retrying; botocore's own would multiply the waits
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )
    client.meta.events.register("before-send.s3.PutObject", refuse_undeclared_body)
    return client


def refuse_undeclared_body(request: Any, **_: Any) -> None:
    """A PUT whose signed SHA-256 is not the one it declares (a content-addressed object's name) is not sent.

    The server stores only bytes that hash to the signed value; this holds the signed value to
    the declared one, so bytes damaged where they were read, or changed since they were named,
    never leave this process. botocore's public ``before-send`` event: the request is signed.
    """
    declared = request.headers.get("x-amz-checksum-sha256")
    if declared is None:
        return
    signed = request.headers.get("X-Amz-Content-SHA256")
    as_text = signed.decode() if isinstance(signed, bytes) else str(signed)
    if base64.b64decode(declared).hex() != as_text:
        raise NameMismatch(N_("the body to send to {url} does not hash to the SHA-256 it declares"), url=request.url)
