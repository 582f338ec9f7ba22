"""The artifact bucket: facts about an artifact from one HeadObject, and its manifest."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from shepherd.adapters.aws_errors import error_code, raise_transient_or_reraise
from shepherd.registry.errors import ArtifactMissing
from shepherd.registry.model import ArtifactFacts, ArtifactRef, Checksum

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
        )

    def read_manifest(self, bucket: str, key: str, max_bytes: int) -> bytes | None:
        try:
            # One byte past the limit is enough to tell that a manifest is too large.
            response = self._client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")
        except ClientError as error:
            code = error_code(error)
            if code in MISSING_CODES:
                return None
            if code == "InvalidRange":  # an empty object has no byte 0
                return b""
            raise_transient_or_reraise(error)
        body: bytes = response["Body"].read()
        return body


def _checksum(response: dict[str, Any]) -> Checksum | None:
    for algorithm, field in CHECKSUM_FIELDS:
        if response.get(field):
            return Checksum(algorithm=algorithm, value=response[field], type=response.get("ChecksumType"))
    return None
