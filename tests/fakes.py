"""In-memory implementations of the registry ports, for domain tests.

They obey the same contract as the AWS adapters: `tests/integration/test_registry_contract.py` runs
one set of assertions against both, so the fakes cannot drift.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shepherd.analysis.judge import VariantSeries
from shepherd.analysis.metrics import SeriesQuery
from shepherd.contracts import Announcement
from shepherd.registry.errors import ArtifactMissing, ConflictError, TransientError
from shepherd.registry.model import (
    ArtifactFacts,
    ArtifactRef,
    AuditEntry,
    ModelSummary,
    ModelVersion,
    Rejection,
    VersionStatus,
)
from shepherd.registry.ports import Page, VersionBuilder


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)  # strictly increasing, like audit keys expect
        return self.now


class InMemoryArtifactStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], ArtifactFacts] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}

    def put(self, artifact: ArtifactRef, size: int = 100, metadata: dict[str, str] | None = None) -> None:
        self.objects[(artifact.bucket, artifact.key, artifact.s3_version_id)] = ArtifactFacts(
            etag="etag", size=size, checksum=None, user_metadata=metadata or {}
        )

    def head(self, artifact: ArtifactRef) -> ArtifactFacts:
        try:
            return self.objects[(artifact.bucket, artifact.key, artifact.s3_version_id)]
        except KeyError:
            raise ArtifactMissing(artifact.uri) from None

    def read_manifest(self, bucket: str, key: str, max_bytes: int) -> bytes | None:
        raw = self.manifests.get((bucket, key))
        return raw[: max_bytes + 1] if raw is not None else None


class InMemoryRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.versions: dict[tuple[str, int], ModelVersion] = {}
        self.claims: dict[ArtifactRef, tuple[str, int]] = {}
        self.rejections: dict[ArtifactRef, Rejection] = {}
        self.audit: list[AuditEntry] = []

    def register_version(
        self, model_name: str, artifact: ArtifactRef, build: VersionBuilder
    ) -> tuple[ModelVersion, bool]:
        with self._lock:
            if artifact in self.claims:
                return self.versions[self.claims[artifact]], False
            latest = max((number for name, number in self.versions if name == model_name), default=0)
            version, audit = build(latest + 1)
            self.versions[(model_name, version.version)] = version
            self.claims[artifact] = (model_name, version.version)
            self.audit.append(audit)
            return version, True

    def find_registration(self, artifact: ArtifactRef) -> ModelVersion | None:
        claim = self.claims.get(artifact)
        return self.versions[claim] if claim else None

    def record_rejection(self, rejection: Rejection) -> None:
        self.rejections.setdefault(rejection.artifact, rejection)

    def get_version(self, model_name: str, version: int) -> ModelVersion | None:
        return self.versions.get((model_name, version))

    def transition(
        self,
        model_name: str,
        version: int,
        expected: VersionStatus,
        audit: AuditEntry,
        changes: Mapping[str, Any],
    ) -> None:
        with self._lock:
            current = self.versions.get((model_name, version))
            if current is None or current.status is not expected:
                raise ConflictError(f"{model_name} v{version} is not {expected}")
            self.versions[(model_name, version)] = current.model_copy(update={"status": audit.to_status, **changes})
            self.audit.append(audit)

    def list_models(self, limit: int, cursor: str | None) -> Page[ModelSummary]:
        names = sorted({name for name, _ in self.versions})
        start = names.index(cursor) + 1 if cursor else 0
        page = names[start : start + limit]
        summaries = []
        for name in page:
            numbers = [number for model, number in self.versions if model == name]
            first, last = self.versions[(name, min(numbers))], self.versions[(name, max(numbers))]
            summaries.append(
                ModelSummary(
                    model_name=name,
                    latest_version=max(numbers),
                    created_at=first.created_at,
                    updated_at=last.created_at,
                )
            )
        more = start + limit < len(names)
        return Page(summaries, page[-1] if more and page else None)

    def list_versions(self, model_name: str, limit: int, cursor: str | None) -> Page[ModelVersion]:
        numbers = sorted((number for name, number in self.versions if name == model_name), reverse=True)
        start = numbers.index(int(cursor)) + 1 if cursor else 0
        page = numbers[start : start + limit]
        more = start + limit < len(numbers)
        return Page([self.versions[(model_name, n)] for n in page], str(page[-1]) if more and page else None)

    def get_rejection(self, bucket: str, key: str) -> Rejection | None:
        matching = [r for a, r in self.rejections.items() if (a.bucket, a.key) == (bucket, key)]
        return max(matching, key=lambda rejection: rejection.rejected_at, default=None)

    def model_audit_trail(self, model_name: str) -> list[AuditEntry]:
        return sorted((entry for entry in self.audit if entry.model_name == model_name), key=lambda e: e.at)


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[Announcement] = []

    def publish(self, *announcements: Announcement) -> None:
        self.published.extend(announcements)

    def of_type(self, kind: type[Announcement]) -> list[Any]:
        return [announcement for announcement in self.published if isinstance(announcement, kind)]


class FakeVariantMetrics:
    """`shepherd.analysis.ports.VariantMetrics` over per-minute values put in by the test.

    Like the CloudWatch adapter (contract in tests/integration/test_cloudwatch_variant_metrics.py):
    every requested series comes back, empty when nothing was put; minutes are whole UTC minutes in
    [start, end) at minute precision; `unavailable` makes every read fail as a throttled call does.
    """

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str], dict[datetime, float]] = {}  # (endpoint, variant, series id)
        self.unavailable = False
        self.calls = 0

    def put(self, endpoint_name: str, variant: str, series_id: str, at: datetime, value: float) -> None:
        self.values.setdefault((endpoint_name, variant, series_id), {})[_minute(at)] = value

    def variant_series(
        self,
        series: tuple[SeriesQuery, ...],
        endpoint_name: str,
        candidate_variant: str,
        baseline_variant: str,
        start: datetime,
        end: datetime,
    ) -> dict[str, VariantSeries]:
        self.calls += 1
        if self.unavailable:
            raise TransientError("GetMetricData: Throttling (fake)")
        low, high = _minute(start), _minute(end)

        def window(variant: str, series_id: str) -> dict[datetime, float]:
            found = self.values.get((endpoint_name, variant, series_id), {})
            return {minute: value for minute, value in found.items() if low <= minute < high}

        return {
            query.id: VariantSeries(window(candidate_variant, query.id), window(baseline_variant, query.id))
            for query in series
        }


def _minute(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(second=0, microsecond=0)
