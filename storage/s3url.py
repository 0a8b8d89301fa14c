"""``s3://BUCKET/PREFIX?endpoint=URL&region=R&profile=P``: where an S3 repository is.

Credentials never sit in the URL (see ``storage/s3.py``), so the URL is safe to log and to
keep in ``bcpctl.yaml``. Parsing needs no boto3, so configuration checks stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from dc.errors import N_, Message, UsageError
from storage.urlparts import endpoint_url, split_url


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None

    @property
    def url(self) -> str:
        pairs = (("endpoint", self.endpoint), ("region", self.region), ("profile", self.profile))
        query = {k: v for k, v in pairs if v}
        path = f"{self.bucket}/{self.prefix}".rstrip("/")
        return f"s3://{path}" + (f"?{urlencode(query, safe=':/')}" if query else "")


def parse_s3_url(url: str) -> S3Location:
    parsed = split_url(url)
    if parsed.scheme != "s3":
        raise UsageError(N_("not an s3:// URL: {url}"), url=url)
    if not parsed.netloc:
        raise UsageError(N_("S3 URL without a bucket: {url} (use s3://BUCKET/PREFIX?endpoint=URL)"), url=url)
    query = parse_qs(parsed.query)
    unknown = set(query) - {"endpoint", "region", "profile"}
    if unknown:
        raise UsageError(
            N_("unknown S3 URL parameter(s) {unknown} (known: endpoint, region, profile)"),
            unknown=", ".join(sorted(unknown)),
        )

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    endpoint = one("endpoint")
    if endpoint:
        endpoint_url(endpoint, Message(N_("S3 endpoint")))
    prefix = parsed.path.strip("/")
    return S3Location(parsed.netloc, f"{prefix}/" if prefix else "", endpoint, one("region"), one("profile"))
