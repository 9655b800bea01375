"""What the fleet relies on from a transfer bucket, run unchanged against LocalStack's S3, moto's server and the memory store."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet.transport.memory_objects import MemoryObjectStore
from fleet.transport.objects import BucketLocation, ObjectCorrupt, ObjectMissing, ObjectStore, ObjectStoreError, ObjectTooLarge
from fleet.transport.s3 import SHA256_METADATA, S3ObjectStore

MB = 1 << 20


@pytest.fixture(params=[pytest.param(server, marks=pytest.mark.queue) for server in ("localstack", "moto")] + ["memory"])
def any_store(request: pytest.FixtureRequest, make_settings) -> Callable[..., ObjectStore]:
    """Opens the same fresh bucket on each implementation (`max_mb` sets the size cap of that handle)."""
    bucket = f"t-{make_settings().queue_name[2:]}"
    memory: dict[str, MemoryObjectStore] = {}

    def open_one(max_mb: int = 64, prefix: str = "fleet") -> ObjectStore:
        location = BucketLocation(bucket, prefix)
        if request.param == "memory":
            store = memory.setdefault("store", MemoryObjectStore(location, max_mb * MB))
            store.max_object_bytes = max_mb * MB
        else:
            settings = make_settings(request.getfixturevalue(f"{request.param}_endpoint"))
            store = S3ObjectStore.connect(settings.queue_endpoint(), location, max_mb * MB)
        store.ensure()
        return store

    return open_one


def tamper(store: ObjectStore, key: str) -> None:
    """Change a stored object's bytes but not the SHA-256 it was stored with (a damaged disk, a bad proxy)."""
    if isinstance(store, MemoryObjectStore):
        store._objects[key] = (b"not the audio", store._objects[key][1])
        return
    assert isinstance(store, S3ObjectStore)
    client, bucket = store._client, store.location.bucket
    sha256 = client.head_object(Bucket=bucket, Key=key)["Metadata"][SHA256_METADATA]
    client.put_object(Bucket=bucket, Key=key, Body=b"not the audio", Metadata={SHA256_METADATA: sha256})


def test_a_file_goes_in_and_comes_out_byte_identical_with_its_sha256(any_store, tmp_path: Path):
    # Given a 9 MB file (over the 8 MB multipart threshold boto3 would use by default)
    source = tmp_path / "audio.bin"
    source.write_bytes(os.urandom(9 * MB))
    store = any_store()
    # When it is put and fetched back
    put = store.put_file(store.location.key("audio", "a1"), source)
    fetched = store.get_file(put.key, tmp_path / "back.bin")
    # Then the bytes are the same and both sides agree on size and hash
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    assert fetched == put == store.head(put.key)
    assert put.key == "fleet/audio/a1" and put.size == 9 * MB
    assert {p.name for p in tmp_path.iterdir()} == {"audio.bin", "back.bin"}  # no .part left behind


def test_a_missing_object_is_said_and_deleting_it_again_is_fine(any_store, tmp_path: Path):
    store = any_store()
    with pytest.raises(ObjectMissing):
        store.get_file("fleet/audio/none", tmp_path / "x")
    assert store.head("fleet/audio/none") is None
    store.delete("fleet/audio/none")  # nothing there: no error
    assert list(tmp_path.iterdir()) == []


def test_keys_list_under_a_prefix_and_deleted_objects_are_gone(any_store, tmp_path: Path):
    source = tmp_path / "f"
    source.write_bytes(b"x")
    store = any_store()
    for key in ("fleet/results/b/2", "fleet/results/a/1", "fleet/audio/c"):
        store.put_file(key, source)
    assert store.keys("fleet/results/") == ["fleet/results/a/1", "fleet/results/b/2"]
    store.delete("fleet/results/a/1")
    assert store.keys("fleet/results/") == ["fleet/results/b/2"]
    store.ensure()  # idempotent: a second home side, a restart
    assert store.keys("fleet/") == ["fleet/audio/c", "fleet/results/b/2"]


def test_a_corrupt_object_is_refused_and_nothing_is_left_at_the_destination(any_store, tmp_path: Path):
    source = tmp_path / "src"
    source.write_bytes(os.urandom(MB))
    store = any_store()
    key = store.put_file("fleet/audio/c", source).key
    tamper(store, key)
    dest = tmp_path / "out" / "audio"
    dest.parent.mkdir()
    with pytest.raises(ObjectCorrupt, match="SHA-256"):
        store.get_file(key, dest)
    assert list(dest.parent.iterdir()) == []


def test_objects_over_the_cap_are_neither_put_nor_fetched(any_store, tmp_path: Path):
    big = tmp_path / "big"
    big.write_bytes(b"\0" * (2 * MB))
    with pytest.raises(ObjectTooLarge, match="FLEET_TRANSFER_MAX_MB"):
        any_store(max_mb=1).put_file("fleet/audio/big", big)
    key = any_store(max_mb=4).put_file("fleet/audio/big", big).key
    with pytest.raises(ObjectTooLarge):
        any_store(max_mb=1).get_file(key, tmp_path / "back")
    assert not (tmp_path / "back").exists()


@pytest.mark.queue
@pytest.mark.parametrize("server", ["localstack", "moto"])
def test_the_bucket_blocks_public_access_and_objects_are_granted_to_their_owner_only(server, request, make_settings,
                                                                                     tmp_path: Path):  # fmt: skip
    settings = make_settings(request.getfixturevalue(f"{server}_endpoint"))
    store = S3ObjectStore.connect(settings.queue_endpoint(), BucketLocation(f"t-{settings.queue_name[2:]}"), MB)
    store.ensure()
    (tmp_path / "a").write_bytes(b"audio")
    key = store.put_file("audio/a", tmp_path / "a").key
    client, bucket = store._client, store.location.bucket
    block = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    grants = client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    assert grants and all(grant["Grantee"]["Type"] == "CanonicalUser" for grant in grants)


@pytest.mark.queue
@pytest.mark.parametrize("server", ["localstack", "moto"])
def test_an_upload_the_store_refuses_is_one_line_naming_the_reason(server, request, make_settings, tmp_path: Path):
    settings = make_settings(request.getfixturevalue(f"{server}_endpoint"))
    store = S3ObjectStore.connect(settings.queue_endpoint(), BucketLocation(f"t-{settings.queue_name[2:]}"), MB)
    (tmp_path / "a").write_bytes(b"audio")
    with pytest.raises(ObjectStoreError) as refused:
        store.put_file("audio/a", tmp_path / "a")  # the bucket was never created
    assert "NoSuchBucket" in str(refused.value) and "\n" not in str(refused.value)
