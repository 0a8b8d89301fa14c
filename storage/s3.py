"""A repository in an S3 bucket (AWS, Ceph RADOS Gateway, MinIO) through boto3.

URL: ``s3://BUCKET/PREFIX?endpoint=URL&region=R&profile=P``. Credentials never sit in the
URL: they come from the environment (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``) or
the named profile, so the URL is safe to log and to keep in ``bcpctl.yaml``.

Choices forced by S3-compatible servers (shared/notes/real-servers.md):

* path-style addressing (a bucket name is not a DNS name on a private endpoint);
* ``request_checksum_calculation`` / ``response_checksum_validation`` = ``when_required``:
  boto3 ≥ 1.36 otherwise sends CRC trailers that older RGW and MinIO releases reject;
* every body is signed with its SHA-256, which the server verifies (RGW answers
  ``XAmzContentSHA256Mismatch``); a single PUT also declares it as the object's checksum —
  for a content-addressed object its own name — and the client refuses to send one whose
  signed hash is not the declared one (``s3client.refuse_undeclared_body``). botocore's
  signing pass is thus the name check (:class:`~storage.capabilities.NameChecking`): one
  hash of the bytes, where Content-MD5 beside a separate name check took two (MD5 is sent
  only with an Object Lock retention, which S3 requires it for). Objects up to 64 MiB (every
  pack) go as one PUT for that reason — a multipart checksum is composite and would no
  longer equal the name; a larger content-addressed body is hashed here against its name
  before its upload starts (its parts are signed like any body). A refused digest is retried
  only while the body still hashes to what was declared (damage on the wire); bytes that
  changed after they were hashed would be refused again and again until the retry budget ran
  out, so that is reported at once;
* RGW 16 ignores Object Lock headers on multipart initiation, so larger objects get their
  retention applied with ``PutObjectRetention`` after completion.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import mmap
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from dc.errors import N_
from dc.failpoint import failpoint
from storage.backend import Capabilities, ObjectInfo, ObjectVersion, check_key
from storage.errors import AccessDenied, DigestRefused, NameMismatch, PermanentStorageError, StorageError
from storage.naming import content_name
from storage.s3body import BodyReader
from storage.s3client import make_client
from storage.s3errors import translate
from storage.s3url import S3Location
from storage.s3url import parse_s3_url as parse_s3_url  # the URL half lives in s3url.py

SINGLE_PUT_LIMIT = 64 * 1024 * 1024
PART_SIZE = 32 * 1024 * 1024
LOCK_MODE = "COMPLIANCE"

T = TypeVar("T")
Buffer = bytes | bytearray | memoryview | mmap.mmap


class S3Backend:
    """One bucket prefix. Thread-safe: boto3 clients are, and the pool is sized to the callers."""

    def __init__(self, location: S3Location, *, connections: int = 16, timeout: float = 60.0) -> None:
        self.location = location
        self._client = make_client(location, connections=connections, timeout=timeout)
        self._object_lock, self._versions = self._probe()

    # -- helpers --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.location.url

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(object_lock=self._object_lock, cheap_ranges=False, versions=self._versions)

    def _key(self, key: str) -> str:
        return self.location.prefix + check_key(key)

    def _call(self, what: str, key: str | None, fn: Callable[..., T], **kwargs: Any) -> T:
        try:
            return fn(Bucket=self.location.bucket, **kwargs)
        except Exception as exc:
            raise self._translate(exc, what, key) from None

    def _translate(self, exc: Exception, what: str, key: str | None) -> Exception:
        return translate(exc, self.location, what, key)

    def _probe(self) -> tuple[bool, bool]:
        """Reach the bucket once (clear errors at open time); learn whether Object Lock and versioning are on."""
        # A listing, not HeadBucket: a HEAD response has no body, so a wrong secret would look
        # like any other 403 instead of naming SignatureDoesNotMatch / InvalidAccessKeyId.
        with ThreadPoolExecutor(2, thread_name_prefix="bcp-s3-probe") as pool:  # three round trips at once
            lock = pool.submit(
                self._call, "read lock configuration of", None, self._client.get_object_lock_configuration
            )
            versioning = pool.submit(self._call, "read versioning of", None, self._client.get_bucket_versioning)
            self._call("open", None, self._client.list_objects_v2, Prefix=self.location.prefix, MaxKeys=1)
            try:
                locked = lock.result().get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
            except (AccessDenied, StorageError):
                locked = False
            try:
                # "Suspended" still keeps the versions written while it was enabled
                status = versioning.result().get("Status")
            except (AccessDenied, StorageError):
                status = None
        return locked, locked or status in ("Enabled", "Suspended")

    # -- storage.capabilities.NameChecking -------------------------------------------------

    def checks_name(self, key: str) -> bool:
        return content_name(key) is not None

    # -- the Backend protocol -------------------------------------------------------------

    def save(self, key: str, data: Buffer, *, retain_until: datetime | None = None) -> None:
        full = self._key(key)
        body = memoryview(data).cast("B")  # no copy: the caller's bytes are sent as they are
        name = content_name(key)
        if len(body) <= SINGLE_PUT_LIMIT:
            # A content-addressed object's name is its SHA-256: declared, it is what botocore's
            # signing pass must find and what the server checks the bytes it receives against.
            sha256 = bytes.fromhex(name) if name else hashlib.sha256(body).digest()
            kwargs: dict[str, Any] = {
                "Key": full,
                "Body": BodyReader(body),
                "ChecksumSHA256": base64.b64encode(sha256).decode(),
            }
            if retain_until is not None:
                kwargs.update(ContentMD5=_md5(body), ObjectLockMode=LOCK_MODE, ObjectLockRetainUntilDate=retain_until)
            try:
                self._call("save", key, self._client.put_object, **kwargs)
            except NameMismatch:
                raise self._not_its_name(key) from None
            except DigestRefused as exc:
                if hashlib.sha256(body).digest() == sha256:
                    raise  # damaged on the wire: sending the same bytes again can succeed
                # changed at the source: under a content name, that object's own damage
                raise (NameMismatch if name else PermanentStorageError)(
                    N_(
                        "S3 refused {key} in {url}: its bytes changed after they were checked (the source object "
                        "is damaged or was rewritten); not retried"
                    ),
                    key=key,
                    url=self.url,
                ) from exc
        else:
            if name is not None and hashlib.sha256(body).hexdigest() != name:
                raise self._not_its_name(key)
            self._save_multipart(key, full, body, retain_until)

    def _not_its_name(self, key: str) -> NameMismatch:
        return NameMismatch(N_("{key} does not hash to its name: not stored in {url}"), key=key, url=self.url)

    def _save_multipart(self, key: str, full: str, body: memoryview, retain_until: datetime | None) -> None:
        upload = self._call("start upload of", key, self._client.create_multipart_upload, Key=full)
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, offset in enumerate(range(0, len(body), PART_SIZE), start=1):
                part = body[offset : offset + PART_SIZE]
                done = self._call(
                    "upload part of",
                    key,
                    self._client.upload_part,
                    Key=full,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=BodyReader(part),
                )
                parts.append({"ETag": done["ETag"], "PartNumber": number})
                failpoint("storage.save.mid-object")
            self._call(
                "complete upload of",
                key,
                self._client.complete_multipart_upload,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(Bucket=self.location.bucket, Key=full, UploadId=upload_id)
            raise
        if retain_until is not None:
            self.extend_lock(key, retain_until)

    def save_new(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        body = bytes(data)
        try:
            self._client.put_object(
                Bucket=self.location.bucket,
                Key=self._key(key),
                Body=body,
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise self._translate(exc, "create", key) from None
        except Exception as exc:
            raise self._translate(exc, "create", key) from None
        return True

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._get(key, offset, length)

    def _get(self, key: str, offset: int, length: int | None, version_id: str | None = None) -> bytes:
        extra: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        if length == 0:
            self._call("stat", key, self._client.head_object, Key=self._key(key), **extra)
            return b""
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            extra["Range"] = f"bytes={offset}-{end}"
        response = self._call("load", key, self._client.get_object, Key=self._key(key), **extra)
        try:
            data = response["Body"].read()
        except Exception as exc:
            raise self._translate(exc, "load", key) from None
        expected = length if length is not None else int(response.get("ContentLength", len(data)))
        if len(data) != expected:
            what = f"version {version_id} of {key}" if version_id else f"object {key}"
            raise PermanentStorageError(
                N_("{what} in {url} is shorter than expected ({offset}+{expected} bytes requested)"),
                what=what,
                url=self.url,
                offset=offset,
                expected=expected,
            )
        return data

    def stat(self, key: str) -> ObjectInfo:
        head = self._call("stat", key, self._client.head_object, Key=self._key(key))
        return ObjectInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp())

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.location.bucket, Prefix=self.location.prefix + prefix)
        cut = len(self.location.prefix)
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    yield ObjectInfo(item["Key"][cut:], int(item["Size"]), item["LastModified"].timestamp())
        except Exception as exc:
            raise self._translate(exc, "list", prefix or None) from None

    def remove(self, key: str) -> None:
        self._call("remove", key, self._client.delete_object, Key=self._key(key))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()

    # -- storage.capabilities.ObjectLocking (used by storage/objectlock.py) -----------------

    def lock_until(self, key: str, version_id: str | None = None) -> datetime | None:
        """The COMPLIANCE retain-until date of the current version (or of ``version_id``), if any."""
        extra = {"VersionId": version_id} if version_id else {}
        head = self._call("stat", key, self._client.head_object, Key=self._key(key), **extra)
        return head.get("ObjectLockRetainUntilDate")

    def extend_lock(self, key: str, until: datetime) -> None:
        """Move the retain-until date later; the server refuses to move it earlier."""
        self._call(
            "extend the lock of",
            key,
            self._client.put_object_retention,
            Key=self._key(key),
            Retention={"Mode": LOCK_MODE, "RetainUntilDate": until},
        )

    # -- storage.capabilities.Versioned -----------------------------------------------------

    def list_versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        paginator = self._client.get_paginator("list_object_versions")
        pages = paginator.paginate(Bucket=self.location.bucket, Prefix=self.location.prefix + prefix)
        cut = len(self.location.prefix)
        try:
            for page in pages:
                # versions and delete markers come in two lists; each is newest first per key
                found = [(item, False) for item in page.get("Versions", ())]
                found += [(item, True) for item in page.get("DeleteMarkers", ())]
                for item, marker in found:
                    yield ObjectVersion(
                        key=item["Key"][cut:],
                        version_id=str(item["VersionId"]),
                        size=0 if marker else int(item["Size"]),
                        mtime=item["LastModified"].timestamp(),
                        latest=bool(item["IsLatest"]),
                        deleted=marker,
                        etag="" if marker else str(item.get("ETag", "")),
                    )
        except Exception as exc:
            raise self._translate(exc, "list versions", prefix or None) from None

    def load_version(self, key: str, version_id: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._get(key, offset, length, version_id)

    def restore_version(self, key: str, version_id: str, *, retain_until: datetime | None = None) -> None:
        """CopyObject from the old version: a new current version with its bytes; the history stays.

        RGW 16 ignores Object Lock headers on CopyObject (it copies the source version's
        retention instead), so the requested retention is applied afterwards, never shortened.
        """
        full = self._key(key)
        kwargs: dict[str, Any] = {
            "Key": full,
            "CopySource": {"Bucket": self.location.bucket, "Key": full, "VersionId": version_id},
        }
        if retain_until is not None:
            kwargs.update(ObjectLockMode=LOCK_MODE, ObjectLockRetainUntilDate=retain_until)
        self._call("restore a version of", key, self._client.copy_object, **kwargs)
        if retain_until is not None:
            current = self.lock_until(key)
            if current is None or current < retain_until:
                self.extend_lock(key, retain_until)


def _md5(body: memoryview) -> str:
    """The Content-MD5 header of ``body``."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
