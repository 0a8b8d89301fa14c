"""The botocore client an :class:`~storage.s3.S3Backend` talks through, and where its credentials come from.

botocore's session (public, documented) rather than boto3's: the same client, without
importing boto3's resource and transfer layers on every CLI start. botocore is imported
when a backend is opened, so commands that never reach S3 do not pay for it.
"""

from __future__ import annotations

import os
from typing import Any

from dc.errors import N_, AuthError, ConfigError
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
    return session.create_client(
        "s3",
        endpoint_url=location.endpoint,
        region_name=region,
        config=Config(
            # Content-MD5 (which RGW verifies) and, for content-addressed objects, a SHA-256
            # that must equal the name protect every body; signing the payload too would add a
            # third SHA-256 pass over plain-HTTP endpoints, the bottleneck on CPUs without SHA
            # instructions. TLS endpoints never sign bodies anyway.
            s3={"addressing_style": "path", "payload_signing_enabled": False},
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
