"""Repository URLs: every scheme parses, every malformed one is refused with a clear message."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dc.errors import UsageError
from storage.s3 import parse_s3_url
from storage.sftp import parse_sftp_url
from storage.url import open_backend


def test_s3_urls_parse_and_print_without_secrets() -> None:
    loc = parse_s3_url("s3://bcp-offsite/ibaraki/repo?endpoint=http://127.0.0.1:7480&region=default&profile=dr")
    assert (loc.bucket, loc.prefix, loc.endpoint, loc.region, loc.profile) == (
        "bcp-offsite",
        "ibaraki/repo/",
        "http://127.0.0.1:7480",
        "default",
        "dr",
    )
    assert loc.url == "s3://bcp-offsite/ibaraki/repo?endpoint=http://127.0.0.1:7480&region=default&profile=dr"
    assert parse_s3_url("s3://bucket").prefix == ""


def test_sftp_urls_parse() -> None:
    loc = parse_sftp_url("sftp://bcp@127.0.0.1:2222/srv/bcp/repo/?known_hosts=/etc/kh&key=/etc/key")
    assert (loc.user, loc.host, loc.port, loc.path, loc.known_hosts, loc.key_file) == (
        "bcp",
        "127.0.0.1",
        2222,
        "/srv/bcp/repo",
        "/etc/kh",
        "/etc/key",
    )
    assert loc.url == "sftp://bcp@127.0.0.1:2222/srv/bcp/repo"
    assert loc.host_label == "[127.0.0.1]:2222"
    assert parse_sftp_url("sftp://bcp@dr.invalid/r").port == 22


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("s3://bkt/p?endpoint=ftp://x", "endpoint must be"),
        ("s3://key:secret@bkt/p", "do not belong in the URL"),
        ("s3:///prefix-only", "without a bucket"),
        ("s3://bkt/p?acl=public", "unknown S3 URL parameter"),
        ("sftp://host/x", "needs a user and a host"),
        ("sftp://u:pw@host/x", "passwords do not belong"),
        ("sftp://u@host/x?cipher=none", "unknown sftp URL parameter"),
        ("sftp://u@host/", "absolute repository path"),
        ("sftp://u@host:99999/x", "invalid port"),
        ("gopher://host/x", "unsupported repository URL scheme"),
    ],
)
def test_malformed_urls_are_refused(url: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        open_backend(url)


def test_sftp_without_any_known_hosts_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("BCPCTL_KNOWN_HOSTS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UsageError, match="never accepted on first use"):
        open_backend("sftp://bcp@127.0.0.1:1/srv/repo")
    with pytest.raises(UsageError, match="does not exist"):
        open_backend("sftp://bcp@127.0.0.1:1/srv/repo", known_hosts=str(tmp_path / "nope"))


#: the pieces a malformed URL is made of: brackets, ports, schemes, hosts, control-free junk
_PIECES = st.sampled_from(
    ["s3://", "sftp://", "file://", "http://", "https://", "b", "u@", "h", "[", "]", "::1", ":", "99999", "-1",
     "x", "/", "?", "endpoint=", "&", "%", "%zz", "#", "@", "127.0.0.1", " "]
)  # fmt: skip


@settings(max_examples=400, derandomize=True, deadline=None)
@given(
    head=st.sampled_from(["s3://b/p?endpoint=", "sftp://", "file://", "s3://", ""]), tail=st.lists(_PIECES, max_size=8)
)
def test_any_malformed_url_is_a_usage_error_never_a_crash(head: str, tail: list[str]) -> None:
    """Hostile finding 4's class: ``urllib.parse`` raises ValueError for some URLs; none may escape."""
    url = head + "".join(tail)
    for parse in (parse_s3_url, parse_sftp_url):
        with contextlib.suppress(UsageError):
            parse(url)


@pytest.mark.parametrize(
    "url",
    [
        "s3://b/p?endpoint=http://[::1",
        "s3://b/p?endpoint=http://[::1]:99999",
        "s3://b/p?endpoint=http://h:port",
        "s3://b/p?endpoint=http://",
        "s3://[b/p",
        "sftp://u@[::1/r",
        "sftp://u@h:99999/r",
        "file://[x/r",
    ],
)
def test_malformed_hosts_and_ports_are_refused(url: str) -> None:
    with pytest.raises(UsageError):
        open_backend(url)


_SECRET = "TOPSECRETPW"


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    outer=st.sampled_from(["s3://b/p?{q}", "s3://{u}b/p?{q}", "file://{u}/tmp/r?{q}", "sftp://{u}h/r?{q}"]),
    inner=st.sampled_from(["http://{u}127.0.0.1:1", "https://{u}[::1]:x", "http://{u}h", "ftp://{u}h/x"]),
    user=st.sampled_from(["u:" + _SECRET + "@", _SECRET + "@", ":" + _SECRET + "@", "u@"]),
    nested=st.booleans(),
    extra=st.sampled_from(["", "&region=x", "&known_hosts=/k"]),
)
def test_userinfo_anywhere_in_a_repository_url_is_refused_and_never_repeated(
    outer: str, inner: str, user: str, nested: bool, extra: str
) -> None:
    """A user or password in the URL, or in a URL nested in its parameters, is refused (exit 2)
    and the message never repeats it; an sftp URL's SSH user is the one name allowed."""
    query = "endpoint=" + inner.format(u=user) + extra if nested else extra.lstrip("&")
    url = outer.format(u="" if nested else user, q=query)
    assume(nested or "{u}" in outer)
    # sftp://USER@HOST names the SSH user (refused later for other reasons, or accepted)
    assume(nested or not outer.startswith("sftp") or ":" in user)
    with pytest.raises(UsageError) as refused:
        open_backend(url)
    assert _SECRET not in refused.value.message
