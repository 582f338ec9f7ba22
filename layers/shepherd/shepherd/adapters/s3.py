"""The artifact bucket: facts about an artifact from one HeadObject, and the manifest as it was then."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shepherd.adapters.aws_errors import error_code, raise_transient_or_reraise
from shepherd.registry.errors import ArtifactMissing
from shepherd.registry.model import ArtifactFacts, ArtifactRef, Checksum
from shepherd.registry.ports import StoredManifest

# Strongest first: a SHA-256 is preferred to a CRC when S3 holds both.
CHECKSUM_FIELDS = (
    ("SHA256", "ChecksumSHA256"),
    ("CRC64NVME", "ChecksumCRC64NVME"),
    ("SHA1", "ChecksumSHA1"),
    ("CRC32C", "ChecksumCRC32C"),
    ("CRC32", "ChecksumCRC32"),
)
MISSING_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion"})


class S3ArtifactStore:
    """Implements `shepherd.registry.ports.ArtifactStore`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def head(self, artifact: ArtifactRef) -> ArtifactFacts:
        params = {"Bucket": artifact.bucket, "Key": artifact.key, "ChecksumMode": "ENABLED"}
        if artifact.s3_version_id != "null":
            params["VersionId"] = artifact.s3_version_id
        try:
            response = self._client.head_object(**params)
        except ClientError as error:
            if error_code(error) in MISSING_CODES:
                raise ArtifactMissing(artifact.uri) from error
            raise_transient_or_reraise(error)
        return ArtifactFacts(
            etag=str(response["ETag"]).strip('"'),
            size=int(response["ContentLength"]),
            checksum=_checksum(response),
            user_metadata=dict(response.get("Metadata", {})),
            version_id=response.get("VersionId"),
            last_modified=response["LastModified"],
        )

    def read_manifest(self, bucket: str, key: str, max_bytes: int, as_of: datetime) -> StoredManifest | None:
        version_id = self._version_as_of(bucket, key, as_of)
        if version_id is None:
            return None
        try:
            # One byte past the limit is enough to tell that a manifest is too large.
            response = self._client.get_object(
                Bucket=bucket, Key=key, VersionId=version_id, Range=f"bytes=0-{max_bytes}"
            )
        except ClientError as error:
            code = error_code(error)
            if code in MISSING_CODES:  # deleted between the listing and the read
                return None
            if code == "InvalidRange":  # an empty object has no byte 0
                return StoredManifest(b"", version_id)
            raise_transient_or_reraise(error)
        return StoredManifest(response["Body"].read(), version_id)

    def first_bytes(self, artifact: ArtifactRef, count: int) -> bytes:
        params = {"Bucket": artifact.bucket, "Key": artifact.key, "Range": f"bytes=0-{count - 1}"}
        if artifact.s3_version_id != "null":
            params["VersionId"] = artifact.s3_version_id
        try:
            response = self._client.get_object(**params)
        except ClientError as error:
            code = error_code(error)
            if code in MISSING_CODES:
                raise ArtifactMissing(artifact.uri) from error
            if code == "InvalidRange":  # an empty object has no byte 0
                return b""
            raise_transient_or_reraise(error)
        return bytes(response["Body"].read(count))

    def _version_as_of(self, bucket: str, key: str, as_of: datetime) -> str | None:
        """The id of the newest version of `key` written no later than `as_of`, to the second (S3's
        LastModified resolution): a manifest written in the same second as the artifact counts as its own.
        None if there was none then, or if it was a delete marker."""
        cutoff = as_of.replace(microsecond=0)
        newest: tuple[datetime, str | None] | None = None
        try:
            pages = self._client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
            for page in pages:
                entries = [(entry, entry["VersionId"]) for entry in page.get("Versions", [])]
                entries += [(entry, None) for entry in page.get("DeleteMarkers", [])]
                for entry, version_id in entries:
                    written = entry["LastModified"].replace(microsecond=0)
                    if entry["Key"] == key and written <= cutoff and (newest is None or written > newest[0]):
                        newest = (written, version_id)
        except ClientError as error:
            raise_transient_or_reraise(error)
        return newest[1] if newest is not None else None


def _checksum(response: dict[str, Any]) -> Checksum | None:
    for algorithm, field in CHECKSUM_FIELDS:
        if response.get(field):
            return Checksum(algorithm=algorithm, value=response[field], type=response.get("ChecksumType"))
    return None
