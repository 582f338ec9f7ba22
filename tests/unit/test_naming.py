"""SageMaker names: valid for any valid input, deterministic, and distinct for distinct inputs."""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shepherd.kernel.sagemaker_names import NAME_PATTERN, is_valid_name
from shepherd.rollouts import naming
from shepherd.rollouts.naming import (
    endpoint_config_name,
    model_resource_name,
    rollout_id,
    variant_name,
)

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@st.composite
def names(draw: st.DrawFn, max_size: int = 63) -> str:
    """Any valid SageMaker name: alphanumeric ends, hyphens (runs too) inside, up to max_size."""
    size = draw(st.integers(min_value=1, max_value=max_size))
    if size == 1:
        return draw(st.sampled_from(ALNUM))
    middle = draw(st.text(alphabet=ALNUM + "-", min_size=size - 2, max_size=size - 2))
    return draw(st.sampled_from(ALNUM)) + middle + draw(st.sampled_from(ALNUM))


@st.composite
def namespaces(draw: st.DrawFn) -> str:
    return draw(names(max_size=naming.MAX_NAMESPACE_LENGTH).filter(lambda n: "--" not in n))


versions = st.integers(min_value=1, max_value=10**9)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0)
)
rollout_ids = st.builds(rollout_id, st.uuids().map(str), moments)
purposes = st.sampled_from(naming.CONFIG_PURPOSES)


def assert_valid(name: str) -> None:
    assert len(name) <= 63, name
    assert re.fullmatch(NAME_PATTERN, name), name


# --- readable when it fits --------------------------------------------------------------------


def test_short_names_are_readable() -> None:
    rid = rollout_id("6a7e8f2b-1c2d-4e5f-8a9b-0c1d2e3f4a5b", datetime(2025, 3, 1, 12, 0, tzinfo=UTC))

    assert model_resource_name("fraud-detector", 12) == "fraud-detector-v12"
    assert model_resource_name("fraud-detector", 12, namespace="shepherd-dev") == "shepherd-dev--fraud-detector-v12"
    assert variant_name("fraud-detector", 12) == "fraud-detector-v12"
    assert rid.startswith("20250301T120000Z-")
    assert endpoint_config_name("fraud", rid, "shift") == f"fraud-{rid}-shift"


def test_long_names_are_truncated_with_a_digest_and_keep_their_tail() -> None:
    long_name = "m" * 63

    model = model_resource_name(long_name, 1_000_000_000)
    config = endpoint_config_name("e" * 63, rollout_id("id", datetime(2025, 1, 1, tzinfo=UTC)), "final")

    assert len(model) == 63 and model.endswith("-v1000000000")
    assert model.startswith("m" * 40 + "-")
    assert len(config) <= 63 and config.endswith("-final")


def test_truncation_never_leaves_a_hyphen_before_the_digest() -> None:
    # The cut falls inside the hyphen run; the prefix must still end with an alphanumeric.
    name = "a" + "-" * 61 + "b"

    result = model_resource_name(name, 7)

    assert_valid(result)
    assert result.startswith("a-") and not result.startswith("a--")


def test_rollout_id_is_utc_and_ignores_sub_seconds() -> None:
    at = datetime(2025, 3, 1, 14, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2)))

    rid = rollout_id("evt", at)

    assert rid.startswith("20250301T120000Z-")
    assert naming.ROLLOUT_ID_PATTERN.fullmatch(rid)


def test_the_same_event_gets_the_same_rollout_id_and_another_event_another() -> None:
    at = datetime(2025, 3, 1, tzinfo=UTC)

    assert rollout_id("evt-1", at) == rollout_id("evt-1", at)
    assert rollout_id("evt-1", at) != rollout_id("evt-2", at)


# --- invalid inputs are bugs ------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: model_resource_name("-bad", 1),
        lambda: model_resource_name("bad-", 1),
        lambda: model_resource_name("under_score", 1),
        lambda: model_resource_name("x" * 64, 1),
        lambda: model_resource_name("ok\n", 1),
        lambda: model_resource_name("ok", 0),
        lambda: model_resource_name("ok", True),
        lambda: model_resource_name("ok", naming.MAX_VERSION + 1),
        lambda: model_resource_name("ok", 1, namespace="a--b"),
        lambda: model_resource_name("ok", 1, namespace="n" * 21),
        lambda: variant_name("", 1),
        lambda: endpoint_config_name("ep", "not-a-rollout-id", "shift"),
        lambda: endpoint_config_name("ep", rollout_id("e", datetime(2025, 1, 1, tzinfo=UTC)), "other"),
        lambda: rollout_id("", datetime(2025, 1, 1, tzinfo=UTC)),
        lambda: rollout_id("evt", datetime(2025, 1, 1)),
    ],
)
def test_invalid_inputs_raise_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


def test_is_valid_name() -> None:
    assert is_valid_name("a--b")
    assert not is_valid_name("a" * 64)
    assert not is_valid_name("a.b")
    assert not is_valid_name("")


# --- properties -------------------------------------------------------------------------------


@given(names(), versions, st.none() | namespaces())
def test_model_resource_names_are_always_valid(model_name: str, version: int, namespace: str | None) -> None:
    assert_valid(model_resource_name(model_name, version, namespace=namespace))


@given(names(), versions)
def test_variant_names_are_always_valid(model_name: str, version: int) -> None:
    assert_valid(variant_name(model_name, version))


@given(names(), rollout_ids, purposes)
def test_endpoint_config_names_are_always_valid(endpoint: str, rid: str, purpose: naming.ConfigPurpose) -> None:
    assert_valid(endpoint_config_name(endpoint, rid, purpose))


@given(st.text(min_size=1), moments)
def test_rollout_ids_are_valid_name_parts(event_id: str, at: datetime) -> None:
    rid = rollout_id(event_id, at)

    assert naming.ROLLOUT_ID_PATTERN.fullmatch(rid)
    assert_valid(rid)


@given(st.tuples(names(), versions), st.tuples(names(), versions), st.none() | namespaces())
def test_distinct_versions_get_distinct_model_names(
    a: tuple[str, int], b: tuple[str, int], namespace: str | None
) -> None:
    if a != b:
        assert model_resource_name(*a, namespace=namespace) != model_resource_name(*b, namespace=namespace)
        assert variant_name(*a) != variant_name(*b)


@given(namespaces(), namespaces(), names(), versions)
def test_two_stacks_never_share_a_model_name(ns_a: str, ns_b: str, model_name: str, version: int) -> None:
    # Includes the ("a-b", "c") / ("a", "b-c") split: a name from one stack is never another's.
    if ns_a != ns_b:
        assert model_resource_name(model_name, version, namespace=ns_a) != model_resource_name(
            model_name, version, namespace=ns_b
        )


@given(namespaces(), names(max_size=20), namespaces(), names(max_size=20), versions)
def test_namespace_and_model_boundaries_are_unambiguous(
    ns_a: str, model_a: str, ns_b: str, model_b: str, version: int
) -> None:
    if (ns_a, model_a) != (ns_b, model_b):
        assert model_resource_name(model_a, version, namespace=ns_a) != model_resource_name(
            model_b, version, namespace=ns_b
        )


@given(st.tuples(names(), rollout_ids, purposes), st.tuples(names(), rollout_ids, purposes))
def test_distinct_inputs_get_distinct_config_names(
    a: tuple[str, str, naming.ConfigPurpose], b: tuple[str, str, naming.ConfigPurpose]
) -> None:
    if a != b:
        assert endpoint_config_name(*a) != endpoint_config_name(*b)


@given(st.lists(names(max_size=63).map(lambda n: (n + "x" * 63)[:63]), min_size=2, max_size=20, unique=True))
def test_long_names_sharing_a_prefix_do_not_collide(long_names: list[str]) -> None:
    # All 63 characters long, so all truncated: only the digest tells them apart.
    results = {model_resource_name(name, 1) for name in long_names}

    assert len(results) == len(long_names)


def test_names_differing_only_after_the_cut_do_not_collide() -> None:
    base = "a" * 60

    first, second = model_resource_name(base + "bbb", 3), model_resource_name(base + "ccc", 3)

    assert first[:40] == second[:40]
    assert first != second


# --- a rollout's fresh baseline variant ------------------------------------------------------------


def test_a_fresh_baseline_variant_names_its_version_and_its_rollout() -> None:
    rid = rollout_id("6a7e8f2b-1c2d-4e5f-8a9b-0c1d2e3f4a5b", datetime(2025, 3, 1, 12, 0, tzinfo=UTC))

    name = naming.baseline_variant_name("fraud-detector", 12, rid)

    assert name == f"fraud-detector-v12-baseline-{rid[-10:]}"


@given(names(), st.integers(min_value=1, max_value=naming.MAX_VERSION), rollout_ids)
def test_fresh_baseline_variant_names_are_always_valid(model_name: str, version: int, rid: str) -> None:
    assert_valid(naming.baseline_variant_name(model_name, version, rid))


@given(names(), versions, rollout_ids, names(), versions)
def test_a_fresh_baseline_variant_never_shares_a_name_with_a_version_variant(
    model_name: str, version: int, rid: str, other_model: str, other_version: int
) -> None:
    # The live variant, the candidate and the fresh baseline are all in one endpoint config.
    assert naming.baseline_variant_name(model_name, version, rid) != variant_name(other_model, other_version)


def test_two_rollouts_get_two_fresh_baseline_names() -> None:
    at = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    first, second = (naming.baseline_variant_name("m", 3, rollout_id(event, at)) for event in ("e1", "e2"))

    assert first != second


# --- one rule for every SageMaker name ------------------------------------------------------------


def test_commands_records_and_uploads_judge_names_by_sagemakers_one_rule() -> None:
    from pydantic import TypeAdapter, ValidationError

    from shepherd.contracts import EndpointName
    from shepherd.registry.errors import ArtifactRejected
    from shepherd.registry.keys import parse_artifact_key
    from shepherd.registry.model import ModelName

    long = "a-" * 40 + "a"  # the pattern matches it; SageMaker refuses it (81 characters)
    assert not is_valid_name(long)
    for name_type in (EndpointName, ModelName):
        with pytest.raises(ValidationError):
            TypeAdapter(name_type).validate_python(long)
        assert TypeAdapter(name_type).validate_python("a-" * 31 + "a") == "a-" * 31 + "a"  # 63: fine
    with pytest.raises(ArtifactRejected, match="63 characters"):
        parse_artifact_key(f"models/{long}/model.tar.gz")
