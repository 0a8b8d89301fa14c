"""storage/s3models.py: botocore's models parsed with orjson are the models botocore parses."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from botocore.loaders import Loader

from storage.s3models import fast_loader


@pytest.mark.parametrize(
    ("service", "kind"), [("s3", "service-2"), ("s3", "endpoint-rule-set-1"), ("s3", "paginators-1")]
)
def test_the_same_models_as_botocore_reads(service: str, kind: str) -> None:
    assert fast_loader().load_service_model(service, kind) == Loader().load_service_model(service, kind)


def test_endpoints_and_partitions_are_the_same() -> None:
    for name in ("endpoints", "partitions", "sdk-default-configuration"):
        assert fast_loader().load_data(name) == Loader().load_data(name)


def test_plain_and_gzipped_files_and_what_orjson_refuses(tmp_path: Path) -> None:
    loader = fast_loader().file_loader
    (tmp_path / "plain.json").write_text('{"b": 1, "a": [1.5, "x"]}', encoding="utf-8")
    with gzip.open(tmp_path / "packed.json.gz", "wb") as f:
        f.write(b'{"z": true}')
    (tmp_path / "nan.json").write_text('{"v": NaN}', encoding="utf-8")  # standard parser only
    assert list(loader.load_file(str(tmp_path / "plain"))) == ["b", "a"]  # order kept
    assert loader.load_file(str(tmp_path / "packed")) == {"z": True}
    value = loader.load_file(str(tmp_path / "nan"))["v"]
    assert value != value  # NaN, from the fallback
    assert loader.load_file(str(tmp_path / "missing")) is None
