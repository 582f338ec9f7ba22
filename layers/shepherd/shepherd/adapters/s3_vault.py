"""Approved copies: one server-side CopyObject of the exact registered S3 version to `approved/`.

S3 computes the copy's checksum over its bytes (`ChecksumAlgorithm`); it is compared to the checksum
registered for the upload, so nothing is downloaded into Lambda. `CopySourceIfMatch` holds the copy to
the registered ETag as well: in an unversioned bucket the "null" version can be overwritten after
registration, and that copy then fails rather than copying the new bytes.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from shepherd.adapters.aws_errors import error_code, raise_transient_or_reraise
from shepherd.adapters.s3 import MISSING_CODES
from shepherd.registry.errors import ArtifactNotApprovable
from shepherd.registry.keys import approved_key
from shepherd.registry.model import ApprovedArtifact, Checksum, ModelVersion

logger = logging.getLogger(__name__)
# The most one CopyObject copies; a larger artifact would need a multipart copy (UploadPartCopy).
MAX_COPY_BYTES = 5 * 1024**3
UNVERSIONED = "null"


class S3ArtifactVault:
    """Implements `shepherd.registry.ports.ArtifactVault` in the artifact bucket."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def secure(self, version: ModelVersion) -> ApprovedArtifact:
        source = version.artifact
        if version.size > MAX_COPY_BYTES:
            raise ArtifactNotApprovable(
                f"{source.uri} is {version.size} bytes: Shepherd copies approved artifacts of at most "
                f"{MAX_COPY_BYTES} bytes (5 GiB, one CopyObject)"
            )
        registered = _comparable(version.checksum)
        algorithm = registered.algorithm if registered is not None else "SHA256"
        copy_source = {"Bucket": source.bucket, "Key": source.key}
        if source.s3_version_id != UNVERSIONED:
            copy_source["VersionId"] = source.s3_version_id
        key = approved_key(version.model_name, version.version)
        try:
            response = self._client.copy_object(
                Bucket=source.bucket,
                Key=key,
                CopySource=copy_source,
                CopySourceIfMatch=f'"{version.etag}"',
                ChecksumAlgorithm=algorithm,
                MetadataDirective="COPY",
                # Tags are labels anyone who uploads may set; copying them would need tagging rights.
                TaggingDirective="REPLACE",
            )
        except ClientError as error:
            code = error_code(error)
            if code in MISSING_CODES:
                raise ArtifactNotApprovable(
                    f"{source.uri} (version {source.s3_version_id}) no longer exists"
                ) from error
            if code == "PreconditionFailed":
                raise ArtifactNotApprovable(
                    f"{source.uri} (version {source.s3_version_id}) changed since it was registered: "
                    f"its ETag is no longer {version.etag}"
                ) from error
            raise_transient_or_reraise(error)
        result = response["CopyObjectResult"]
        copied = str(result.get(f"Checksum{algorithm}") or "")
        copy_version = str(response.get("VersionId") or UNVERSIONED)
        if registered is not None and copied != registered.value:
            self._discard(source.bucket, key, copy_version)
            raise ArtifactNotApprovable(
                f"{source.uri} (version {source.s3_version_id}) does not match its registration: its "
                f"{algorithm} checksum is {copied or 'missing'}, {registered.value} when it was registered"
            )
        return ApprovedArtifact(
            bucket=source.bucket,
            key=key,
            s3_version_id=copy_version,
            checksum=Checksum(algorithm=algorithm, value=copied, type="FULL_OBJECT"),
            copied_at=result["LastModified"],
        )

    def _discard(self, bucket: str, key: str, version_id: str) -> None:
        """A copy that does not match is never served (no version records it); removing it keeps
        `approved/` to what was approved. Failing to remove it changes nothing, so it is only logged."""
        params = {"Bucket": bucket, "Key": key}
        if version_id != UNVERSIONED:
            params["VersionId"] = version_id
        try:
            self._client.delete_object(**params)
        except ClientError as error:
            logger.warning("could not delete a mismatched copy", extra={"key": key, "error": error_code(error)})


def _comparable(checksum: Checksum | None) -> Checksum | None:
    """The registered checksum if it is over the whole object (as the copy's is); a multipart upload's
    composite checksum ("<value>-<parts>") is not, and the ETag and version id then hold the copy."""
    if checksum is None or checksum.type == "COMPOSITE" or "-" in checksum.value:
        return None
    return checksum
