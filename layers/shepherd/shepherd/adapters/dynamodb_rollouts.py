"""Rollouts, endpoint locks and alarm registrations in the registry table (layout: docs/design.md)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from shepherd.adapters.dynamodb import (
    DynamoTable,
    audit_key,
    cancellation_codes,
    cancellation_items,
    item_of,
    key_of,
    model_of,
    put_new,
    serialize,
    serialize_values,
    status_change_items,
)
from shepherd.contracts import Announcement
from shepherd.kernel.errors import TransientError
from shepherd.rollouts.ports import (
    AlarmRegistration,
    Announce,
    AnswerCommand,
    AuditEndpoint,
    BaselineIs,
    Change,
    ChangeRejected,
    EndpointAuditEntry,
    EndpointBusy,
    ForgetAlarms,
    ForgetLive,
    Incident,
    MoveVersion,
    RecordIncident,
    RecordRefusal,
    RegisterAlarms,
    ReleaseLock,
    RolloutRequest,
    SaveRollout,
    SetLive,
    StartRollout,
    StoredRollout,
)
from shepherd.rollouts.record import LiveDeployment, Rollout

OUTBOX_INDEX = "OUTBOX"  # gsi1pk of announcements not yet published
CLEAN_UP_INDEX = "ROLLOUTS_TO_CLEAN_UP"  # gsi1pk of finished rollouts whose resources may remain
REFUSALS_INDEX = "REFUSALS"  # gsi1pk of refused commands (endpoint audit entries), by time


@cache
def announcement_types() -> dict[str, type[Announcement]]:
    """Every announcement by its detail-type: imports every contract module, so only when an outbox
    holds something to read back (not at every cold start)."""
    from shepherd.contracts import ANNOUNCEMENTS

    return {contract.DETAIL_TYPE: contract for contract in ANNOUNCEMENTS}


def endpoint_pk(endpoint_name: str) -> str:
    return f"ENDPOINT#{endpoint_name}"


def alarm_pk(alarm_name: str) -> str:
    return f"ALARM#{alarm_name}"


class DynamoRolloutStore(DynamoTable):
    """Implements `shepherd.rollouts.ports.RolloutStore`."""

    def commit(self, changes: Sequence[Change]) -> None:
        items: list[dict[str, Any]] = []
        owners: list[Change] = []  # which change each transaction item came from
        for change in changes:
            for item in self._items(change):
                items.append(item)
                owners.append(change)
        try:
            self._transact(items)
        except self._client.exceptions.TransactionCanceledException as cancelled:
            codes = cancellation_codes(cancelled)
            for position, code in enumerate(codes):
                if code != "ConditionalCheckFailed":
                    continue
                change = owners[position]
                [current] = cancellation_items(cancelled, position)
                if isinstance(change, StartRollout) and current and current.get("sk") == "LOCK":
                    raise EndpointBusy(str(current["rollout_id"])) from cancelled
                raise ChangeRejected(change, current) from cancelled
            raise TransientError(f"rollout commit cancelled: {codes}") from cancelled

    def _items(self, change: Change) -> list[dict[str, Any]]:
        if isinstance(change, StartRollout):
            rollout = change.rollout
            lock = {"pk": endpoint_pk(rollout.endpoint_name), "sk": "LOCK", "rollout_id": rollout.rollout_id}
            return [put_new(lock, return_old=True), put_new(_rollout_item(rollout, change.request))]
        if isinstance(change, SaveRollout):
            return [
                {
                    "Put": {
                        "Item": serialize(_rollout_item(change.rollout, change.request)),
                        "ConditionExpression": "revision = :expected",
                        "ExpressionAttributeValues": serialize_values({":expected": change.expected_revision}),
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
        if isinstance(change, ReleaseLock):
            return [
                {
                    "Delete": {
                        "Key": key_of(endpoint_pk(change.endpoint_name), "LOCK"),
                        "ConditionExpression": "attribute_not_exists(pk) OR rollout_id = :id",
                        "ExpressionAttributeValues": serialize_values({":id": change.rollout_id}),
                    }
                }
            ]
        if isinstance(change, MoveVersion):
            return status_change_items(change.audit, change.expected, dict(change.changes))
        if isinstance(change, BaselineIs | ForgetLive):
            return [_baseline_item(change)]
        return _record_items(change)

    # --- reads ----------------------------------------------------------------------------------

    def active_rollouts(self) -> list[StoredRollout]:
        items = self._query_all(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :active",
            ExpressionAttributeValues=serialize_values({":active": "ACTIVE_ROLLOUTS"}),
        )
        return [stored for stored in self._records(items) if not stored.rollout.phase.is_terminal]

    def _records(self, listed: list[dict[str, Any]]) -> list[StoredRollout]:
        """The records the index lists, read again consistently (the index lags), in its order: 100 a
        call, not one GetItem a rollout, which would take the tick 50 s for 1,000 at 50 ms a call."""
        keys = [(endpoint_pk(item["endpoint_name"]), f"ROLLOUT#{item['rollout_id']}") for item in listed]
        return [_stored(item) for item in self._get_many(keys)]

    def get_rollout(self, endpoint_name: str, rollout_id: str) -> StoredRollout | None:
        item = self._get(endpoint_pk(endpoint_name), f"ROLLOUT#{rollout_id}")
        return _stored(item) if item else None

    def latest_rollout(self, endpoint_name: str) -> StoredRollout | None:
        items, _ = self._query(
            None,
            1,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=serialize_values({":pk": endpoint_pk(endpoint_name), ":prefix": "ROLLOUT#"}),
            ScanIndexForward=False,  # rollout ids start with their UTC request time
            ConsistentRead=True,
        )
        return _stored(items[0]) if items else None

    def live(self, endpoint_name: str) -> LiveDeployment | None:
        item = self._get(endpoint_pk(endpoint_name), "ENDPOINT")
        return model_of(item["live"], LiveDeployment) if item else None

    def endpoints_serving(self, model_resource_name: str) -> list[str]:
        # Active rollouts first, then the live endpoints: a rollout that completes meanwhile (another
        # endpoint's pass, running beside this one) moves from the first to the second in one commit,
        # so it is seen in one or the other. Read the other way round, it could be seen in neither.
        serving: set[str] = set()
        for stored in self.active_rollouts():
            rollout = stored.rollout
            if model_resource_name in {v.model_resource_name for v in (rollout.candidate, rollout.live) if v}:
                serving.add(rollout.endpoint_name)
        endpoints = self._query_all(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :endpoints",
            ExpressionAttributeValues=serialize_values({":endpoints": "ENDPOINTS"}),
        )
        serving |= {
            item["endpoint_name"]
            for item in endpoints
            if item["live"]["variant"]["model_resource_name"] == model_resource_name
        }
        return sorted(serving)

    def managed_endpoints(self) -> list[str]:
        """Every endpoint Shepherd serves or is rolling out to (index queries, never a Scan)."""
        active = self._query_all(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :active",
            ExpressionAttributeValues=serialize_values({":active": "ACTIVE_ROLLOUTS"}),
        )
        return sorted({*self.endpoint_names(), *(str(item["endpoint_name"]) for item in active)})

    def endpoint_names(self) -> list[str]:
        """Every endpoint with a live deployment (a Query on gsi1)."""
        endpoints = self._query_all(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :endpoints",
            ExpressionAttributeValues=serialize_values({":endpoints": "ENDPOINTS"}),
        )
        return [str(item["endpoint_name"]) for item in endpoints]

    def lock_holder(self, endpoint_name: str) -> str | None:
        item = self._get(endpoint_pk(endpoint_name), "LOCK")
        return str(item["rollout_id"]) if item else None

    def rollouts_of(self, endpoint_name: str, newest: int | None = None) -> list[StoredRollout]:
        params: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": serialize_values({":pk": endpoint_pk(endpoint_name), ":prefix": "ROLLOUT#"}),
            "ScanIndexForward": False,
        }
        items = self._query_all(**params) if newest is None else self._query(None, newest, **params)[0]
        return [_stored(item) for item in items]

    def incidents(self, endpoint_name: str) -> list[Incident]:
        items = self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=serialize_values({":pk": endpoint_pk(endpoint_name), ":prefix": "INCIDENT#"}),
        )
        return [model_of(item, Incident) for item in items]

    def pending_announcements(self, endpoint_name: str) -> list[Announce]:
        items = self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=serialize_values({":pk": endpoint_pk(endpoint_name), ":prefix": "OUTBOX#"}),
            ConsistentRead=True,
        )
        groups: dict[str, list[Announcement]] = {}
        for item in items:
            key = str(item["sk"]).removeprefix("OUTBOX#").rsplit("#", 1)[0]
            groups.setdefault(key, []).append(_announcement(item))
        return [Announce(endpoint_name, key, tuple(announcements)) for key, announcements in groups.items()]

    def command_answer(self, endpoint_name: str, command: str, command_id: str) -> Announcement | None:
        item = self._get(endpoint_pk(endpoint_name), answer_sk(command, command_id))
        return None if item is None else _announcement(item)

    def endpoints_owed_announcements(self) -> list[str]:
        # Outbox items carry a sparse index key until published: any rollout's, finished ones included.
        items = self._query_all(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :outbox",
            ExpressionAttributeValues=serialize_values({":outbox": OUTBOX_INDEX}),
        )
        return sorted({str(item["endpoint_name"]) for item in items})

    def rollouts_to_clean_up(self) -> list[StoredRollout]:
        items = self._query_all(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :clean",
            ExpressionAttributeValues=serialize_values({":clean": CLEAN_UP_INDEX}),
        )
        return [stored for stored in self._records(items) if stored.rollout.phase.is_terminal]

    def cleaned_up(self, endpoint_name: str, rollout_id: str) -> None:
        try:
            self._call(
                "update_item",
                Key=key_of(endpoint_pk(endpoint_name), f"ROLLOUT#{rollout_id}"),
                UpdateExpression="REMOVE gsi1pk, gsi1sk",
                ConditionExpression="attribute_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # no such rollout: nothing to mark

    def forget(self, announce: Announce) -> None:
        if announce.announcements:
            pk = endpoint_pk(announce.endpoint_name)
            self._transact([{"Delete": {"Key": key_of(pk, sk)}} for sk in _outbox_keys(announce)])

    def alarm_registration(self, alarm_name: str) -> AlarmRegistration | None:
        item = self._get(alarm_pk(alarm_name), "ALARM")
        if item is None:
            return None
        return AlarmRegistration(alarm_name, str(item["endpoint_name"]), str(item["rollout_id"]))

    def endpoint_audit_trail(self, endpoint_name: str) -> list[EndpointAuditEntry]:
        items = self._query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=serialize_values({":pk": f"AUDIT#ENDPOINT#{endpoint_name}"}),
        )
        return [model_of(item, EndpointAuditEntry) for item in items]

    def refusals(self, limit: int) -> list[EndpointAuditEntry]:
        items, _ = self._query(
            None,
            limit,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :refusals",
            ExpressionAttributeValues=serialize_values({":refusals": REFUSALS_INDEX}),
            ScanIndexForward=False,
        )
        return [model_of(item, EndpointAuditEntry) for item in items]


def _baseline_item(change: BaselineIs | ForgetLive) -> dict[str, Any]:
    """The endpoint's baseline item, checked (or deleted) only if it is still the one read."""
    condition: dict[str, Any] = {"Key": key_of(endpoint_pk(change.endpoint_name), "ENDPOINT")}
    if change.config_name is None:
        condition["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        condition |= _baseline_on(change.config_name)
    return {"ConditionCheck" if isinstance(change, BaselineIs) else "Delete": condition}


def _baseline_on(config_name: str) -> dict[str, Any]:
    """The condition that the endpoint's baseline is still the one read: on ``config_name``."""
    return {
        "ConditionExpression": "#live.#config = :config",
        "ExpressionAttributeNames": {"#live": "live", "#config": "config_name"},
        "ExpressionAttributeValues": serialize_values({":config": config_name}),
    }


def _record_items(change: Change) -> list[dict[str, Any]]:
    """Changes that write records unconditionally (or only once): no state to lose a race on."""
    if isinstance(change, SetLive):
        item = {
            "pk": endpoint_pk(change.endpoint_name),
            "sk": "ENDPOINT",
            "gsi1pk": "ENDPOINTS",
            "gsi1sk": change.endpoint_name,
            "endpoint_name": change.endpoint_name,
            "live": item_of(change.live),
        }
        put: dict[str, Any] = {"Item": serialize(item)}
        if change.only_if_config is not None:
            put |= _baseline_on(change.only_if_config)
        return [{"Put": put}]
    if isinstance(change, RegisterAlarms):
        return [
            {
                "Put": {
                    "Item": serialize(
                        {
                            "pk": alarm_pk(name),
                            "sk": "ALARM",
                            "alarm_name": name,
                            "endpoint_name": change.endpoint_name,
                            "rollout_id": change.rollout_id,
                        }
                    )
                }
            }
            for name in change.alarm_names
        ]
    if isinstance(change, ForgetAlarms):
        return [{"Delete": {"Key": key_of(alarm_pk(name), "ALARM")}} for name in change.alarm_names]
    if isinstance(change, RecordIncident):
        incident = change.incident
        sk = f"INCIDENT#{incident.flipped_at.isoformat(timespec='milliseconds')}#{incident.rollout_id}"
        return [{"Put": {"Item": serialize(item_of(incident, pk=endpoint_pk(incident.endpoint_name), sk=sk))}}]
    if isinstance(change, Announce):
        return [
            put_new(
                {
                    "pk": endpoint_pk(change.endpoint_name),
                    "sk": sk,
                    "gsi1pk": OUTBOX_INDEX,
                    "gsi1sk": f"{change.endpoint_name}#{sk}",
                    "endpoint_name": change.endpoint_name,
                    "detail_type": announcement.DETAIL_TYPE,
                    "detail": announcement.model_dump_json(exclude_none=True),
                }
            )
            for sk, announcement in zip(_outbox_keys(change), change.announcements, strict=True)
        ]
    if isinstance(change, AnswerCommand):
        answer = {
            "pk": endpoint_pk(change.endpoint_name),
            "sk": answer_sk(change.command, change.command_id),
            "detail_type": change.answer.DETAIL_TYPE,
            "detail": change.answer.model_dump_json(exclude_none=True),
        }
        return [put_new(answer)]  # the first answer stays: a later delivery repeats it
    if isinstance(change, AuditEndpoint):
        entry = change.entry
        return [put_new(item_of(entry, **endpoint_audit_keys(entry)))]
    if isinstance(change, RecordRefusal):
        entry = change.entry
        keys = endpoint_audit_keys(entry)
        # A plain put: a redelivered command writes the same entry again.
        index = {"gsi1pk": REFUSALS_INDEX, "gsi1sk": keys["sk"]}
        return [{"Put": {"Item": serialize(item_of(entry, **keys, **index))}}]
    raise TypeError(f"unknown change {change!r}")


def endpoint_audit_keys(entry: EndpointAuditEntry) -> dict[str, str]:
    """Time-ordered on the endpoint; a retry of the same decision (same revision) finds its entry written."""
    what = entry.action if entry.revision is None else f"{entry.action}#r{entry.revision}"
    return audit_key(f"ENDPOINT#{entry.endpoint_name}", entry.at, entry.event_id, what)


def answer_sk(command: str, command_id: str) -> str:
    return f"ANSWER#{command}#{command_id}"


def _announcement(item: dict[str, Any]) -> Announcement:
    """An announcement stored in an item (an outbox entry, a command's answer)."""
    return announcement_types()[str(item["detail_type"])].model_validate_json(str(item["detail"]))


def _outbox_keys(announce: Announce) -> list[str]:
    return [f"OUTBOX#{announce.key}#{index:02d}" for index in range(len(announce.announcements))]


def _rollout_item(rollout: Rollout, request: RolloutRequest) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": endpoint_pk(rollout.endpoint_name),
        "sk": f"ROLLOUT#{rollout.rollout_id}",
        "endpoint_name": rollout.endpoint_name,
        "rollout_id": rollout.rollout_id,
        "revision": rollout.revision,
        "phase": rollout.phase.value,
        "rollout": item_of(rollout),
        "request": item_of(request),
    }
    # The sparse index holds active rollouts, then finished ones until their clean-up is done.
    index = CLEAN_UP_INDEX if rollout.phase.is_terminal else "ACTIVE_ROLLOUTS"
    return item | {"gsi1pk": index, "gsi1sk": f"{rollout.endpoint_name}#{rollout.rollout_id}"}


def _stored(item: dict[str, Any]) -> StoredRollout:
    return StoredRollout(model_of(item["rollout"], Rollout), model_of(item["request"], RolloutRequest))
