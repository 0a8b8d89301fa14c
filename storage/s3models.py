"""botocore's service models, parsed with orjson.

Building an S3 client parses botocore's S3 model, endpoint rules and partitions from JSON:
~0.15 s of every ``bcpctl`` command that opens an S3 repository, ~80 ms of it in the
standard library's parser (with an ``OrderedDict`` per object). A replication run sends
nothing before its client exists, so this is start-up that rclone does not pay. orjson
parses the same files in a fraction of that; dicts keep their order as ``OrderedDict`` did.
"""

from __future__ import annotations

import gzip
from typing import Any

import orjson
from botocore.loaders import JSONFileLoader, Loader


class _OrjsonFileLoader(JSONFileLoader):
    def load_file(self, file_path: str) -> Any:
        for ext, opener in ((".json", open), (".json.gz", gzip.open)):
            try:
                with opener(file_path + ext, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                continue
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:  # something only the standard parser accepts
                return super().load_file(file_path)
        return None


def fast_loader() -> Loader:
    """A botocore data loader for ``session.register_component("data_loader", ...)``."""
    return Loader(file_loader=_OrjsonFileLoader())
