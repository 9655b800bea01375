"""The transfer bucket's location, and what an unreachable store says."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.transport.objects import BucketLocation, StoreUnavailable
from fleet.transport.s3 import S3ObjectStore
from fleet.transport.spec import ServiceEndpoint
from tests.support.ports import free_port


@pytest.mark.parametrize(("url", "bucket", "prefix"), [
    ("s3://fleet", "fleet", ""),
    ("s3://fleet/", "fleet", ""),
    ("s3://my.bucket-1/home/fleet/", "my.bucket-1", "home/fleet"),
])  # fmt: skip
def test_a_bucket_url_gives_its_bucket_and_prefix(url, bucket, prefix):
    location = BucketLocation.parse(url)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert location.key("audio", "k") == "/".join(p for p in (prefix, "audio", "k") if p)


@pytest.mark.parametrize("url", ["fleet", "http://host/fleet", "s3://", "s3://Fleet", "s3://a", "s3://fleet/a/../b",
                                 "s3://fleet/a//b", "s3://fle..et"])  # fmt: skip
def test_anything_else_is_refused_in_one_line(url):
    with pytest.raises(ValueError) as refused:
        BucketLocation.parse(url)
    message = str(refused.value)
    assert "\n" not in message and ("expected s3://bucket" in message or "prefix" in message), message


def test_an_endpoint_that_does_not_answer_is_unavailable_not_an_error_of_the_object(tmp_path: Path):
    endpoint = ServiceEndpoint(f"http://127.0.0.1:{free_port()}", "us-east-1", max_attempts=1, timeout_s=1)
    store = S3ObjectStore.connect(endpoint, BucketLocation("fleet"), 1 << 20)
    with pytest.raises(StoreUnavailable) as unavailable:
        store.head("fleet/audio/x")
    assert "unreachable" in str(unavailable.value) and "\n" not in str(unavailable.value)
