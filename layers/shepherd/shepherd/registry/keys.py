"""The artifact key layout: `models/<model_name>/<any sub-folders>/model.tar.gz`."""

from __future__ import annotations

import re

from msgspec import Struct

from shepherd.registry.errors import ArtifactRejected
from shepherd.registry.model import MODEL_NAME_PATTERN

PREFIX = "models/"
ARTIFACT_FILE_NAME = "model.tar.gz"
MANIFEST_FILE_NAME = "manifest.json"
# Shepherd's own copies of approved artifacts (`approved_key`): never an upload to register.
APPROVED_PREFIX = "approved/"
_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)


class ArtifactKey(Struct, frozen=True):
    """What an artifact's key says: the model it belongs to and where its manifest is."""

    model_name: str
    folder: str  # the key's folder, ending in "/": where manifest.json is looked up

    @property
    def manifest_key(self) -> str:
        return self.folder + MANIFEST_FILE_NAME


def is_artifact_key(key: str) -> bool:
    """Whether a key is meant to be a model artifact. Anything else (a manifest, a README) is ignored."""
    return key.startswith(PREFIX) and key.rsplit("/", 1)[-1] == ARTIFACT_FILE_NAME


def why_ignored(key: str) -> str | None:
    """Why an upload that is not an artifact key registers nothing, for the uploader to read; None for the
    files expected beside artifacts (a manifest under `models/`, a folder marker), which are not worth
    a record."""
    name = key.rsplit("/", 1)[-1]
    if key.endswith("/") or (key.startswith(PREFIX) and name == MANIFEST_FILE_NAME):
        return None
    if key.startswith(APPROVED_PREFIX):  # Shepherd's copy of an approved artifact
        return None
    if "/" not in key:
        return f"{key!r} is at the bucket root: only {_layout()} registers a version"
    if not key.startswith(PREFIX):
        return f"{key!r} is outside {PREFIX}: only {_layout()} registers a version"
    return f"the file name is {name!r}, not {ARTIFACT_FILE_NAME!r}: only {_layout()} registers a version"


def parse_artifact_key(key: str) -> ArtifactKey:
    """Validate an artifact key (one for which `is_artifact_key` holds); raise ArtifactRejected if invalid."""
    segments = key.split("/")
    if len(segments) < 3:
        raise ArtifactRejected("INVALID_KEY", f"key {key!r} has no model name: expected {_layout()}", None)
    model_name = segments[1]
    if any(segment == "" for segment in segments):
        raise ArtifactRejected("INVALID_KEY", f"key {key!r} has an empty path segment", model_name)
    if any(segment in (".", "..") for segment in segments):
        raise ArtifactRejected("INVALID_KEY", f"key {key!r} has a '.' or '..' path segment", model_name)
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise ArtifactRejected("INVALID_KEY", f"key {key!r} contains control characters", model_name)
    if not _MODEL_NAME.fullmatch(model_name):
        raise ArtifactRejected(
            "INVALID_MODEL_NAME",
            f"model name {model_name!r} must match {MODEL_NAME_PATTERN} (SageMaker's name rule)",
            model_name,
        )
    return ArtifactKey(model_name=model_name, folder=key[: -len(ARTIFACT_FILE_NAME)])


def approved_key(model_name: str, version: int) -> str:
    """Where the approved copy of a version's artifact lives; only Shepherd's roles may write there."""
    return f"{APPROVED_PREFIX}{model_name}/{version}/{ARTIFACT_FILE_NAME}"


def _layout() -> str:
    return f"{PREFIX}<model_name>/<any sub-folders>/{ARTIFACT_FILE_NAME}"
