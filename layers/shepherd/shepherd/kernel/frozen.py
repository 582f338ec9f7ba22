"""The one base of Shepherd's validated data: records it stores, contracts it sends and accepts, the
rollout record and its parts, the judge's configuration and verdicts.

Unknown fields are refused (a misspelt field is an error, not silently dropped), instances are
immutable (a record is changed by making the next one), and each model builds its validator on first
use: a function touches a few of these models, not every one at each cold start (README, Cold start).
"""

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
