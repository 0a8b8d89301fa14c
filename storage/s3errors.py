"""What a failed S3 call means: botocore's exceptions as bcpctl's storage errors.

One place decides which server answers are a missing object, refused credentials, a lock,
damage in transit (retried by :mod:`storage.retry`) or a permanent refusal, so every S3 call
reports the same way. botocore is imported only when a call has failed.
"""

from __future__ import annotations

from dc.errors import N_, AuthError, UsageError
from storage.errors import AccessDenied, DigestRefused, ObjectNotFound, PermanentStorageError, StorageError, Unreachable
from storage.s3url import S3Location

_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidClientTokenId"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


def _where(location: S3Location) -> str:
    return location.endpoint or "AWS S3"


def translate(exc: Exception, location: S3Location, what: str, key: str | None) -> Exception:
    """The storage error (or :mod:`dc.errors` error) that ``exc`` from botocore means, worded for the operator."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    target = f"{key} " if key else ""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _MISSING_CODES:
            return ObjectNotFound(N_("object {key} not found in {url}"), key=key, url=location.url)
        if code in _AUTH_CODES:
            return AuthError(
                N_("S3 at {endpoint} rejected the credentials ({code})"), endpoint=_where(location), code=code
            )
        if code == "NoSuchBucket":
            return UsageError(
                N_("bucket '{bucket}' does not exist at {endpoint}"),
                bucket=location.bucket,
                endpoint=_where(location),
            )
        if code in ("AccessDenied", "403") or status == 403:
            return AccessDenied(
                N_("S3 refused {what} {target}in {url}: access denied (Object Lock or policy)"),
                what=what,
                target=target,
                url=location.url,
            )
        if code == "InvalidRange":
            return PermanentStorageError(
                N_("{what} {target}in {url}: range beyond the end of the object"),
                what=what,
                target=target,
                url=location.url,
            )
        if code in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"):
            return DigestRefused(
                N_("S3 rejected {what} {target}in {url}: bytes damaged in transit ({code})"),
                what=what,
                target=target,
                url=location.url,
                code=code,
            )
        return StorageError(
            N_("S3 {what} {target}in {url} failed: {code}"),
            what=what,
            target=target,
            url=location.url,
            code=code or status,
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return Unreachable(
            N_("cannot reach S3 endpoint {endpoint} (connection refused or timed out)"), endpoint=_where(location)
        )
    if isinstance(exc, NoCredentialsError):
        return AuthError(N_("no S3 credentials for {url}"), url=location.url)
    if isinstance(exc, ConnectionClosedError | BotoCoreError | OSError):
        return StorageError(
            N_("S3 {what} {target}at {endpoint} failed: {error_type}"),
            what=what,
            target=target,
            endpoint=_where(location),
            error_type=type(exc).__name__,
        )
    try:
        import urllib3

        if isinstance(exc, urllib3.exceptions.HTTPError):
            return StorageError(
                N_("S3 {what} {target}at {endpoint} failed: connection lost"),
                what=what,
                target=target,
                endpoint=_where(location),
            )
    except ImportError:  # pragma: no cover - urllib3 ships with botocore
        pass
    return exc
