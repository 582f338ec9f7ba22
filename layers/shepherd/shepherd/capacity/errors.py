"""What can go wrong while Shepherd reads or changes a variant's auto scaling, named by what happened."""

from __future__ import annotations

from shepherd.registry.errors import ShepherdError


class ScalingRequestRefused(ShepherdError):
    """Application Auto Scaling refused a request for good (an invalid request, a missing permission,
    a limit): asking again gives the same answer."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = f"{code}: {reason}"


class NoScalableTarget(ScalingRequestRefused):
    """A policy or suspension was asked for a variant that is not registered as a scalable target."""
