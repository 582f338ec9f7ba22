"""S3's saved part: every version of every object, with the version ids the registry recorded.

The registry keeps each artifact's S3 version id and reads the manifest "as of" a moment through
ListObjectVersions, so a restart must bring back each key's whole history in order: every version with
its exact id, bytes, ETag, checksum, metadata, tags and LastModified, and the delete markers between
them. They are written into moto's bucket directly (`setlist`, as moto's PutObject stores a version),
never through PutObject: a restored object must not announce itself as a new upload (`Object Created`).

Buckets come from the template, deployed again before the restore; a saved bucket the deployment did
not create (one made by hand) is created again with its versioning. Not kept: ACLs, Glacier restores,
multipart uploads in progress, bucket settings (the template's deployment sets them).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal

from moto.s3.models import FakeBucket, FakeDeleteMarker, FakeKey, s3_backends
from pydantic import Field, field_validator

from shepherd_cli.local.saved.document import Document, Saved


class ObjectVersion(Saved):
    """One entry of a key's history: an object version, or a delete marker (no body)."""

    version_id: str
    last_modified: datetime
    delete_marker: bool = False
    body: str = ""  # base64
    etag: str | None = None  # without quotes; None for a delete marker
    is_versioned: bool = True
    metadata: dict[str, str] = Field(default_factory=dict)
    storage_class: str | None = "STANDARD"
    checksum_algorithm: str | None = None
    checksum_value: str | None = None
    checksum_type: str | None = None
    checksum_parts: int | None = None
    encryption: str | None = None
    kms_key_id: str | None = None
    bucket_key_enabled: bool | str | None = None  # moto keeps the header as given ("true")
    lock_mode: str | None = None
    lock_legal_status: str | None = None
    lock_until: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("body")
    @classmethod
    def _base64(cls, body: str) -> str:
        try:
            base64.b64decode(body, validate=True)
        except binascii.Error:
            raise ValueError("body is not base64") from None
        return body


class SavedKey(Saved):
    name: str
    versions: list[ObjectVersion]  # oldest first, as S3 keeps them


class SavedBucket(Saved):
    name: str
    region: str
    versioning: Literal["Enabled", "Suspended"] | None
    keys: list[SavedKey]


class Partition(Saved):
    account: str
    partition: str
    buckets: list[SavedBucket]


class S3Document(Document):
    service: Literal["s3"] = "s3"
    partitions: list[Partition]


def capture() -> S3Document:
    partitions = []
    for account, by_partition in s3_backends.items():
        for partition, backend in by_partition.items():
            buckets = [_bucket(bucket, backend) for bucket in list(backend.buckets.values())]
            if buckets:
                partitions.append(Partition(account=account, partition=partition, buckets=buckets))
    return S3Document(partitions=partitions)


def _bucket(bucket: FakeBucket, backend: Any) -> SavedBucket:
    keys = [
        SavedKey(name=name, versions=[_version(entry, backend) for entry in versions])
        for name, versions in bucket.keys.lists()
    ]
    versioning = bucket.versioning_status  # "Enabled", "Suspended" or None: the model checks it
    return SavedBucket(name=bucket.name, region=bucket.region_name, versioning=versioning, keys=keys)  # type: ignore[arg-type]


def _version(entry: FakeKey | FakeDeleteMarker, backend: Any) -> ObjectVersion:
    if isinstance(entry, FakeDeleteMarker):
        return ObjectVersion(version_id=entry.version_id, last_modified=entry.last_modified, delete_marker=True)
    return ObjectVersion(
        version_id=entry.version_id,
        last_modified=entry.last_modified,
        body=base64.b64encode(entry.value).decode(),
        etag=entry.etag.strip('"'),
        is_versioned=bool(entry._is_versioned),
        metadata={str(name): str(value) for name, value in entry.metadata.items()},
        storage_class=entry.storage_class,
        checksum_algorithm=entry.checksum_algorithm,
        checksum_value=entry.checksum_value,
        checksum_type=entry.checksum_type,
        checksum_parts=entry.checksum_parts,
        encryption=entry.encryption,
        kms_key_id=entry.kms_key_id,
        bucket_key_enabled=entry.bucket_key_enabled,
        lock_mode=entry.lock_mode,
        lock_legal_status=entry.lock_legal_status,
        lock_until=entry.lock_until,
        tags=dict(backend.tagger.get_tag_dict_for_resource(entry.arn)),
    )


def apply(document: S3Document) -> None:
    for saved in document.partitions:
        backend = s3_backends[saved.account][saved.partition]
        for saved_bucket in saved.buckets:
            bucket = backend.buckets.get(saved_bucket.name)
            if bucket is None:
                bucket = backend.create_bucket(saved_bucket.name, saved_bucket.region)
            bucket.versioning_status = saved_bucket.versioning
            for saved_key in saved_bucket.keys:
                bucket.keys.setlist(saved_key.name, _history(saved_key, bucket, backend))


def _history(saved: SavedKey, bucket: FakeBucket, backend: Any) -> list[FakeKey | FakeDeleteMarker]:
    history: list[FakeKey | FakeDeleteMarker] = []
    latest: FakeKey | None = None
    for version in saved.versions:
        if version.delete_marker:
            # moto's marker points at the object it hides; one with nothing before it hides an empty one.
            marker = FakeDeleteMarker(key=latest or _object(saved.name, _EMPTY, bucket, backend))
            marker._version_id = version.version_id
            marker.last_modified = version.last_modified
            history.append(marker)
        else:
            latest = _object(saved.name, version, bucket, backend)
            history.append(latest)
    return history


def _object(name: str, version: ObjectVersion, bucket: FakeBucket, backend: Any) -> FakeKey:
    key = FakeKey(
        name=name,
        value=base64.b64decode(version.body),
        account_id=bucket.account_id,
        region_name=bucket.region_name,
        storage=version.storage_class,
        etag=version.etag,
        is_versioned=version.is_versioned,
        version_id=version.version_id,
        bucket_name=bucket.name,
        encryption=version.encryption,
        kms_key_id=version.kms_key_id,
        bucket_key_enabled=version.bucket_key_enabled,
        lock_mode=version.lock_mode,
        lock_legal_status=version.lock_legal_status,
        lock_until=version.lock_until,
        checksum_value=version.checksum_value,
        checksum_type=version.checksum_type,
        checksum_parts=version.checksum_parts,
    )
    key.checksum_algorithm = version.checksum_algorithm
    key.set_metadata(dict(version.metadata))
    key.last_modified = version.last_modified
    if version.tags:
        backend.tagger.tag_resource(key.arn, [{"Key": name, "Value": value} for name, value in version.tags.items()])
    return key


_EMPTY = ObjectVersion(version_id="null", last_modified=datetime(1970, 1, 1), etag=None)
