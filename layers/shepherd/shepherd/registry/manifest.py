"""The optional `manifest.json` uploaded next to an artifact: a strict contract, unknown fields rejected."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from shepherd.contracts.free_text import SafeText, escape_unsafe, refuse_unsafe
from shepherd.registry.errors import ArtifactRejected
from shepherd.registry.model import SourceRef, TrainingData, VersionNumber

MAX_MANIFEST_BYTES = 256 * 1024
# Every string is free text shown by the CLI and the dashboard: no control or bidi characters.
ShortText = Annotated[SafeText, StringConstraints(min_length=1, max_length=256)]
MetricName = Annotated[SafeText, StringConstraints(min_length=1, max_length=128)]


class Manifest(BaseModel):
    # strict: "0.9" is not a metric and 1 is not a string; allow_inf_nan: NaN cannot be compared to a threshold
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    description: Annotated[SafeText, StringConstraints(max_length=4096)] | None = None
    framework: ShortText | None = None
    framework_version: ShortText | None = None
    inference_image: Annotated[SafeText, StringConstraints(min_length=1, max_length=2048)] | None = None
    metrics: dict[MetricName, float] = Field(default_factory=dict)
    training_data: TrainingData | None = None
    source: SourceRef | None = None
    tags: dict[ShortText, Annotated[SafeText, StringConstraints(max_length=256)]] = Field(default_factory=dict)
    parent_version: VersionNumber | None = None

    @field_validator("training_data", "source")
    @classmethod
    def _lineage_is_safe_text(cls, value: TrainingData | SourceRef | None) -> TrainingData | SourceRef | None:
        # The lineage models are stored records too (read back as they were): checked here, at the edge.
        for text in (value.model_dump() if value is not None else {}).values():
            if isinstance(text, str):
                refuse_unsafe(text)
        return value


def parse_manifest(raw: bytes) -> Manifest:
    """Parse the manifest's bytes; raise ArtifactRejected with a precise reason when it is not valid."""
    if len(raw) > MAX_MANIFEST_BYTES:
        # Only the first MAX_MANIFEST_BYTES + 1 bytes are read: the real size is unknown, so say the limit.
        raise ArtifactRejected(
            "INVALID_MANIFEST",
            f"manifest.json is larger than the {MAX_MANIFEST_BYTES // 1024} KiB limit ({MAX_MANIFEST_BYTES} bytes)",
            None,
        )
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as error:
        raise ArtifactRejected("INVALID_MANIFEST", f"manifest.json: {describe(error)}", None) from error


def describe(error: ValidationError) -> str:
    """One line naming each failing field, e.g. `metrics.auc: Input should be a valid number`."""
    problems = []
    for detail in error.errors(include_url=False):
        # A dict key is part of the location: written with its unsafe characters escaped.
        where = escape_unsafe(".".join(str(part) for part in detail["loc"])) or "(document)"
        problems.append(f"{where}: {detail['msg']}")
    return "; ".join(problems)
