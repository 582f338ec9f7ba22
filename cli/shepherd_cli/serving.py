"""Which versions take an endpoint's traffic now, from its variants' weights as SageMaker describes them.

"Live" for a person is what serves the traffic, so this is computed from DescribeEndpoint's
``CurrentWeight``, never from the records: the endpoint's baseline item names the previous version
until a watch window ends, while the candidate already serves 100%. `shepherd status` and the
dashboard both read it here.
"""

from __future__ import annotations

from typing import Any


def serving_versions(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each version with traffic, largest share first: ``{"version", "percent", "roles"}``.

    `variants` are `endpoint_view.endpoint_status`'s (``version``, ``current_weight``, ``role``). A version
    served by two variants (the live one and a fresh baseline beside a canary) is counted once, with
    their shares summed. Versions at weight 0 (a standby in the watch window) are not serving.
    """
    total = sum(variant["current_weight"] or 0 for variant in variants)
    if not total:
        return []
    shares: dict[Any, dict[str, Any]] = {}
    for variant in variants:
        weight = variant["current_weight"] or 0
        if weight <= 0:
            continue
        entry = shares.setdefault(variant["version"], {"version": variant["version"], "percent": 0.0, "roles": []})
        entry["percent"] += 100 * weight / total
        role = variant.get("role")
        if role and role not in entry["roles"]:
            entry["roles"].append(role)
    return sorted(shares.values(), key=lambda entry: -entry["percent"])


def standby_versions(variants: list[dict[str, Any]]) -> list[Any]:
    """Versions kept on the endpoint at weight 0 for a quick rollback (the watch window)."""
    return [variant["version"] for variant in variants if variant.get("role") == "standby"]
