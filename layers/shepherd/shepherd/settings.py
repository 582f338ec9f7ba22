"""Configuration: a validated model read from the environment at cold start. No silent defaults."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    registry_table_name: str = Field(min_length=1)
    event_bus_name: str = Field(min_length=1)
    artifact_bucket_name: str = Field(min_length=1)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Missing or empty variables fail here, at cold start, naming the variable."""
        return cls.model_validate({name: environ.get(name.upper()) for name in cls.model_fields})
