"""What only the S3 backend does: multipart for large objects, long listings, locks, the wire format."""

from __future__ import annotations

import base64
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from dc.clock import utcnow
from storage import s3
from storage.backend import Backend
from storage.capabilities import as_capability, object_locking
from storage.errors import NameMismatch
from storage.s3 import S3Backend
from storage.url import open_backend
from tests.servers.flipproxy import FlipProxy
from tests.servers.storage import BUCKET, LOCKED_BUCKET, s3_url

pytestmark = pytest.mark.s3


def s3_of(backend: Backend) -> S3Backend:
    found = as_capability(backend, S3Backend)
    assert found is not None
    return found


def test_objects_above_the_single_put_limit_go_multipart(ceph, s3_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(s3, "SINGLE_PUT_LIMIT", 6 * 1024 * 1024)
    monkeypatch.setattr(s3, "PART_SIZE", 5 * 1024 * 1024)  # RGW's minimum part size
    backend = open_backend(s3_url(ceph))
    data = os.urandom(12 * 1024 * 1024 + 123)
    backend.save("data/big", data)
    assert backend.load("data/big") == data
    assert backend.load("data/big", 11 * 1024 * 1024, 1000) == data[11 * 1024 * 1024 : 11 * 1024 * 1024 + 1000]
    etag = ceph.client().head_object(Bucket=BUCKET, Key=s3_of(backend).location.prefix + "data/big")["ETag"]
    assert etag.strip('"').endswith("-3")  # three parts: a multipart upload, not one PUT


def test_single_puts_are_signed_with_the_name_as_their_sha256(ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    backend = open_backend(s3_url(ceph))
    data = os.urandom(100_000)
    name = hashlib.sha256(data).hexdigest()
    seen: list[dict] = []
    s3_of(backend)._client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: seen.append(dict(request.headers))
    )
    backend.save(f"data/{name[:2]}/{name}", data)
    backend.save("config", b"not named by its hash")
    named, fixed = ({k.lower(): v for k, v in h.items()} for h in seen)
    assert base64.b64decode(named["x-amz-checksum-sha256"]).hex() == name
    assert _text(named["x-amz-content-sha256"]) == name  # the server checks the bytes against it
    assert "content-md5" not in named  # one hash of the body, not two
    assert _text(fixed["x-amz-content-sha256"]) == hashlib.sha256(b"not named by its hash").hexdigest()


def test_a_body_that_does_not_hash_to_its_name_is_never_sent(ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    backend = open_backend(s3_url(ceph))
    name = hashlib.sha256(b"the named bytes").hexdigest()
    sent: list[str] = []
    s3_of(backend)._client.meta.events.register("after-call.s3.PutObject", lambda **_: sent.append("put"))
    with pytest.raises(NameMismatch, match="does not hash to its name"):
        backend.save(f"data/{name[:2]}/{name}", b"other bytes")
    assert sent == [] and list(backend.list("")) == []


def test_an_upload_with_a_retention_carries_the_content_md5_s3_requires(ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    backend = open_backend(s3_url(ceph, locked=True))
    seen: list[dict] = []
    s3_of(backend)._client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: seen.append(dict(request.headers))
    )
    backend.save("index/locked-md5", b"x", retain_until=utcnow() + timedelta(hours=1))
    headers = {k.lower(): v for k, v in seen[0].items()}
    assert base64.b64decode(headers["content-md5"]) == hashlib.md5(b"x").digest()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_listings_longer_than_one_page_are_complete(ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    backend = open_backend(s3_url(ceph), connections=16)
    bodies = {f"index/{hashlib.sha256(str(n).encode()).hexdigest()}": str(n).encode() for n in range(1010)}
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: backend.save(k, bodies[k]), bodies))
    assert sorted(i.key for i in backend.list("index/")) == sorted(bodies)


def test_lock_until_and_extend_lock(ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    backend = open_backend(s3_url(ceph, locked=True))
    locks = object_locking(backend)
    assert backend.capabilities.object_lock and locks is not None
    until = utcnow() + timedelta(hours=1)
    backend.save("index/locked", b"x", retain_until=until)
    assert abs((locks.lock_until("index/locked") - until).total_seconds()) < 2  # type: ignore[operator]
    locks.extend_lock("index/locked", until + timedelta(hours=1))
    assert locks.lock_until("index/locked") > until + timedelta(minutes=59)  # type: ignore[operator]
    backend.save("index/unlocked", b"x")
    assert locks.lock_until("index/unlocked") is None
    assert LOCKED_BUCKET in backend.url


def test_a_missing_bucket_is_a_usage_error(ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    from dc.errors import UsageError

    with pytest.raises(UsageError, match="does not exist"):
        open_backend(ceph.url("no-such-bucket", "x"))


@pytest.mark.parametrize("extra", [0, 1], ids=["one PUT at the limit", "multipart just above it"])
def test_the_name_is_checked_one_put_or_multipart(ceph, s3_env, monkeypatch, extra: int) -> None:  # type: ignore[no-untyped-def]
    limit = 5 * 1024 * 1024
    monkeypatch.setattr(s3, "SINGLE_PUT_LIMIT", limit)
    monkeypatch.setattr(s3, "PART_SIZE", limit)  # RGW's minimum part size
    backend = open_backend(s3_url(ceph))
    data = os.urandom(limit + extra)
    name = hashlib.sha256(data).hexdigest()
    key = f"data/{name[:2]}/{name}"
    assert s3_of(backend).checks_name(key) and not s3_of(backend).checks_name("config")
    damaged = bytearray(data)
    damaged[-1] ^= 0xFF
    with pytest.raises(NameMismatch):
        backend.save(key, damaged)  # the last byte is still checked
    assert list(backend.list("")) == []
    backend.save(key, data)
    assert hashlib.sha256(backend.load(key)).hexdigest() == name


def test_a_multipart_upload_to_a_locked_bucket_is_retained(ceph, s3_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(s3, "SINGLE_PUT_LIMIT", 5 * 1024 * 1024)
    monkeypatch.setattr(s3, "PART_SIZE", 5 * 1024 * 1024)
    backend = open_backend(s3_url(ceph, locked=True))
    data = os.urandom(5 * 1024 * 1024 + 1)
    name = hashlib.sha256(data).hexdigest()
    until = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    backend.save(f"data/{name[:2]}/{name}", data, retain_until=until)
    locks = object_locking(backend)
    assert locks is not None and locks.lock_until(f"data/{name[:2]}/{name}") == until
    assert backend.load(f"data/{name[:2]}/{name}") == data


def test_a_part_flipped_on_the_wire_is_refused_and_the_object_sent_again(ceph, s3_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(s3, "SINGLE_PUT_LIMIT", 5 * 1024 * 1024)
    monkeypatch.setattr(s3, "PART_SIZE", 5 * 1024 * 1024)
    url = s3_url(ceph)
    prefix = url.split("?")[0].removeprefix(f"s3://{BUCKET}/")
    data = os.urandom(5 * 1024 * 1024 + 1)
    name = hashlib.sha256(data).hexdigest()
    key = f"data/{name[:2]}/{name}"
    # the first PUT under data/ is the first part (the upload starts with a POST)
    with FlipProxy(ceph.rgw_port, f"PUT /{BUCKET}/{prefix}/data/".encode()) as proxy:
        backend = open_backend(url.replace(ceph.endpoint, f"http://127.0.0.1:{proxy.port}"))
        try:
            backend.save(key, data)
        finally:
            backend.close()
    assert proxy.flipped == 1
    assert hashlib.sha256(open_backend(url).load(key)).hexdigest() == name


def test_a_locked_upload_flipped_on_the_wire_is_sent_again_with_its_retention(ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    url = s3_url(ceph, locked=True)
    prefix = url.split("?")[0].removeprefix(f"s3://{LOCKED_BUCKET}/")
    data = os.urandom(200_000)
    name = hashlib.sha256(data).hexdigest()
    key = f"data/{name[:2]}/{name}"
    until = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    with FlipProxy(ceph.rgw_port, f"PUT /{LOCKED_BUCKET}/{prefix}/data/".encode()) as proxy:
        backend = open_backend(url.replace(ceph.endpoint, f"http://127.0.0.1:{proxy.port}"))
        try:
            backend.save(key, data, retain_until=until)
        finally:
            backend.close()
    assert proxy.flipped == 1
    direct = open_backend(url)
    locks = object_locking(direct)
    assert direct.load(key) == data and locks is not None and locks.lock_until(key) == until


def test_a_body_changed_after_signing_is_refused_once_and_not_retried(ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    backend = open_backend(s3_url(ceph))
    body = bytearray(os.urandom(100_000))
    name = hashlib.sha256(body).hexdigest()
    sent: list[str] = []

    def changed_once_signed(request, **_) -> None:  # type: ignore[no-untyped-def]
        sent.append(request.url)
        body[500] ^= 0xFF  # after the signing pass and the name check: only the server can see it

    s3_of(backend)._client.meta.events.register("before-send.s3.PutObject", changed_once_signed)
    with pytest.raises(NameMismatch, match="changed after they were checked"):
        backend.save(f"data/{name[:2]}/{name}", body)
    assert len(sent) == 1 and list(backend.list("")) == []
