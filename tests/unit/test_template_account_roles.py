"""Who may do what in one account (issue 20), judged by evaluating template.yaml's policies.

moto enforces no resource policy, so each rule is asked of the template's bus, bucket and topic
policies with `tests/policy.py` (IAM's evaluation: an explicit Deny wins; in the stack's own account
an Allow in the identity or the resource policy is enough). The caller in most questions is an
administrator of the account, whose identity policy allows everything: what keeps them out must be a
Deny. `python3 scripts/check_deployed_permissions.py` asks the same questions of a deployed stack.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from shepherd.contracts import (
    ModelPromotionRequested,
    ModelRollbackRequested,
    ModelRolloutResumeRequested,
    ModelVersionApprovalRequested,
)
from shepherd.contracts.catalogue import ANNOUNCEMENTS, COMMANDS
from tests.policy import ACCOUNT, Deployment, Request, allowed, arn_of, identity_allows, put_events
from tests.unit.test_template_security import ROOT, function_statements

TEMPLATE: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
BUS = arn_of("ShepherdBus", "Arn")

APPROVER = f"arn:aws:iam::{ACCOUNT}:role/shepherd-approver"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deploy-pipeline"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/on-call"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
OTHER_ACCOUNT_APPROVER = "arn:aws:iam::444455556666:role/approvers/risk-officer"
ROLES = {
    "ApproverPrincipals": (APPROVER, (ModelVersionApprovalRequested.DETAIL_TYPE,)),
    "DeployerPrincipals": (DEPLOYER, (ModelPromotionRequested.DETAIL_TYPE,)),
    "OperatorPrincipals": (OPERATOR, (ModelRollbackRequested.DETAIL_TYPE, ModelRolloutResumeRequested.DETAIL_TYPE)),
}
COMMAND_TYPES = [command.DETAIL_TYPE for command in COMMANDS]
NAMED = {
    "Environment": "prod",
    "ApproverPrincipals": f"{APPROVER},arn:aws:iam::444455556666:role/approvers/*",
    "DeployerPrincipals": DEPLOYER,
    "OperatorPrincipals": OPERATOR,
}

# What each function announces, from the code: its own service's announcements, Command Refused from
# `inbound/refusal.py` (commands only), and, for the three that flush an endpoint's outbox
# (`rollouts/outbox.py`: promotion, controller, rollback), whatever a rollout commit may owe.
OUTBOX = {
    "Rollout Started",
    "Rollout Traffic Shifted",
    "Rollout Completed",
    "Rollout Failed",
    "Model Version Retired",
    "Rollout Rolled Back",
    "Canary Analysis Completed",
    "Rollout Held",
    "Rollout Resumed",
    "Gating Alarms Missing",  # a controller pass's hold, committed with the rollout like the others
}
ANNOUNCED_BY = {
    "RegisterVersionFunction": {"Model Version Registered", "Model Artifact Rejected", "Model Artifact Ignored"},
    "DecideApprovalFunction": {
        "Model Version Approved",
        "Model Version Rejected",
        "Model Version Approval Refused",
        "Command Refused",
    },
    "StartRolloutFunction": OUTBOX | {"Promotion Rejected", "Command Refused"},
    # The canary judge's rollback runs the rollback service in process (it may skip).
    "RolloutControllerFunction": OUTBOX | {"Rollback Skipped", "Rollout Resume Refused", "Command Refused"},
    # A redeploy is a promotion (which may be rejected).
    "RollbackFunction": OUTBOX | {"Rollback Skipped", "Promotion Rejected", "Command Refused"},
}


def bus_policy(deployment: Deployment) -> list[dict[str, Any]]:
    return [s for name in deployment.resources_of("AWS::Events::EventBusPolicy") for s in deployment.statements(name)]


def may_put(template: dict[str, Any], parameters: dict[str, str], who: str, *detail_types: str, admin: bool) -> bool:
    """Whether `who` may put one batch of these commands on the bus (source: a person's tool)."""
    deployment = Deployment(template, parameters)
    request = put_events(who, BUS, *[("shepherd.cli", detail_type) for detail_type in detail_types])
    return allowed(request, bus_policy(deployment), identity_allows=admin)


# --- each kind of command, to its roles only ------------------------------------------------------------


@pytest.mark.parametrize("parameter", list(ROLES))
def test_an_administrator_of_the_account_cannot_send_a_command_of_a_kind_whose_roles_are_named(parameter):
    for detail_type in ROLES[parameter][1]:
        assert not may_put(TEMPLATE, NAMED, ADMIN, detail_type, admin=True)


@pytest.mark.parametrize("parameter", list(ROLES))
def test_each_role_sends_its_own_kind_and_no_other_even_with_an_administrators_identity_policy(parameter):
    role, own = ROLES[parameter]
    for detail_type in COMMAND_TYPES:
        # Without any identity policy of its own: the bus policy's Allow is enough in the account.
        assert may_put(TEMPLATE, NAMED, role, detail_type, admin=False) == (detail_type in own), detail_type
        assert may_put(TEMPLATE, NAMED, role, detail_type, admin=True) == (detail_type in own), detail_type


def test_one_entry_of_another_kind_denies_the_whole_batch():
    assert not may_put(
        TEMPLATE,
        NAMED,
        DEPLOYER,
        ModelPromotionRequested.DETAIL_TYPE,
        ModelVersionApprovalRequested.DETAIL_TYPE,
        admin=True,
    )


def test_a_role_of_another_account_is_matched_by_its_arn_pattern_and_needs_its_own_identity_policy():
    approval = ModelVersionApprovalRequested.DETAIL_TYPE
    assert may_put(TEMPLATE, NAMED, OTHER_ACCOUNT_APPROVER, approval, admin=True)
    assert not may_put(TEMPLATE, NAMED, OTHER_ACCOUNT_APPROVER, approval, admin=False)
    assert not may_put(TEMPLATE, NAMED, "arn:aws:iam::444455556666:role/Admin", approval, admin=True)
    assert not may_put(TEMPLATE, NAMED, OTHER_ACCOUNT_APPROVER, ModelPromotionRequested.DETAIL_TYPE, admin=True)


def test_nobody_but_the_functions_announces():
    for who in (ADMIN, APPROVER, DEPLOYER, OPERATOR):
        request = put_events(who, BUS, ("shepherd", "Model Version Approved"))
        assert not allowed(request, bus_policy(Deployment(TEMPLATE, NAMED)), identity_allows=True)


# --- separation of duties, structural -----------------------------------------------------------------


def test_with_duties_separated_a_role_listed_as_approver_and_deployer_may_do_neither_across_the_line():
    both = {**NAMED, "ApproverPrincipals": APPROVER, "DeployerPrincipals": f"{DEPLOYER},{APPROVER}"}
    assert not may_put(TEMPLATE, both, APPROVER, ModelPromotionRequested.DETAIL_TYPE, admin=True)
    assert not may_put(TEMPLATE, both, APPROVER, ModelVersionApprovalRequested.DETAIL_TYPE, admin=True)
    assert may_put(TEMPLATE, both, DEPLOYER, ModelPromotionRequested.DETAIL_TYPE, admin=True)
    # Turned off, the lists alone decide.
    relaxed = {**both, "SeparateApprovalDuties": "false"}
    assert may_put(TEMPLATE, relaxed, APPROVER, ModelPromotionRequested.DETAIL_TYPE, admin=True)
    assert may_put(TEMPLATE, relaxed, APPROVER, ModelVersionApprovalRequested.DETAIL_TYPE, admin=True)


def upload(who: str) -> Request:
    return Request(who, "s3:PutObject", arn_of("ArtifactBucket", "Arn") + "/models/churn/model.tar.gz")


def test_with_duties_separated_the_approvers_may_not_upload_whatever_their_identity_policy_allows():
    def bucket(parameters: dict[str, str]) -> list[dict[str, Any]]:
        return Deployment(TEMPLATE, parameters).statements("ArtifactBucketPolicy")

    assert not allowed(upload(APPROVER), bucket(NAMED), identity_allows=True)
    assert allowed(upload(DEPLOYER), bucket(NAMED), identity_allows=True)
    assert allowed(upload(APPROVER), bucket({**NAMED, "SeparateApprovalDuties": "false"}), identity_allows=True)
    # In dev, auto means off.
    assert allowed(upload(APPROVER), bucket({**NAMED, "Environment": "dev"}), identity_allows=True)


# --- the default when no role is named -----------------------------------------------------------------


@pytest.mark.parametrize("detail_type", COMMAND_TYPES)
def test_an_empty_list_in_prod_means_nobody(detail_type):
    for who in (ADMIN, APPROVER, DEPLOYER, OPERATOR):
        assert not may_put(TEMPLATE, {"Environment": "prod"}, who, detail_type, admin=True)


@pytest.mark.parametrize("detail_type", COMMAND_TYPES)
def test_an_empty_list_in_dev_means_this_accounts_principals_that_iam_allows(detail_type):
    assert may_put(TEMPLATE, {"Environment": "dev"}, ADMIN, detail_type, admin=True)
    assert not may_put(TEMPLATE, {"Environment": "dev"}, ADMIN, detail_type, admin=False)
    assert not may_put(
        TEMPLATE, {"Environment": "dev"}, "arn:aws:iam::444455556666:role/Admin", detail_type, admin=True
    )


def test_role_parameters_take_arns_not_account_ids():
    import re

    for parameter in ROLES:
        pattern = re.compile(TEMPLATE["Parameters"][parameter]["AllowedPattern"])
        assert pattern.fullmatch("")  # the default: no role named
        assert pattern.fullmatch(APPROVER) and pattern.fullmatch("arn:aws:iam::444455556666:role/approvers/*")
        assert pattern.fullmatch(f"arn:aws:iam::{ACCOUNT}:user/alice")
        for refused in (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", f" {APPROVER}", "*"):
            assert not pattern.fullmatch(refused), refused


# --- each function role, its own announcements only -------------------------------------------------------


@pytest.mark.parametrize("function", list(ANNOUNCED_BY))
def test_each_function_role_may_put_exactly_its_own_announcements(function):
    deployment = Deployment(TEMPLATE, NAMED)
    identity = deployment.resolve(function_statements(TEMPLATE, function))
    role = arn_of(f"{function}Role", "Arn")
    may = {
        announcement.DETAIL_TYPE
        for announcement in ANNOUNCEMENTS
        if allowed(
            put_events(role, BUS, ("shepherd", announcement.DETAIL_TYPE)),
            bus_policy(deployment),
            identity_allows=identity_allows(put_events(role, BUS, ("shepherd", announcement.DETAIL_TYPE)), identity),
        )
    }
    assert may == ANNOUNCED_BY[function]
    # and never a command, under any source
    for detail_type in COMMAND_TYPES:
        for source in ("shepherd", "shepherd.cli"):
            request = put_events(role, BUS, (source, detail_type))
            assert not allowed(request, bus_policy(deployment), identity_allows=identity_allows(request, identity))


def test_every_announcement_of_the_catalogue_is_made_by_some_function():
    # A new announcement is put by some function, whose role must then allow it (the test above).
    assert set().union(*ANNOUNCED_BY.values()) == {announcement.DETAIL_TYPE for announcement in ANNOUNCEMENTS}


# --- the alarm topics: CloudWatch only ------------------------------------------------------------------


def publish(topic: str, who: str, service: str | None = None, alarm_account: str = ACCOUNT) -> Request:
    keys = {}
    if service is not None:
        keys = {
            "aws:SourceAccount": alarm_account,
            "aws:SourceArn": f"arn:aws:cloudwatch:eu-west-1:{alarm_account}:alarm:churn-errors",
        }
    return Request(who, "sns:Publish", arn_of(topic, "Ref"), keys, service=service)


@pytest.mark.parametrize("topic", ["AlarmTopic", "OperatorTopic"])
def test_only_this_accounts_cloudwatch_alarms_may_publish_to_the_topics(topic):
    policy = Deployment(TEMPLATE, NAMED).statements("AlarmTopicPolicy")
    cloudwatch = "cloudwatch.amazonaws.com"
    assert allowed(publish(topic, "", cloudwatch), policy, identity_allows=False)
    assert not allowed(publish(topic, "", cloudwatch, alarm_account="444455556666"), policy, identity_allows=False)
    for who in (ADMIN, OPERATOR, arn_of("RollbackFunctionRole", "Arn")):
        assert not allowed(publish(topic, who), policy, identity_allows=True), who
    # The rollback function's subscription stays on the alarm topic only.
    assert TEMPLATE["Resources"]["RollbackFunction"]["Properties"]["Events"]["AlarmNotified"]["Properties"][
        "Topic"
    ] == {"Ref": "AlarmTopic"}


# --- operations ---------------------------------------------------------------------------------------------


def test_the_rollback_function_has_a_small_reserved_concurrency():
    reserved = Deployment(TEMPLATE, NAMED).resolve(
        TEMPLATE["Resources"]["RollbackFunction"]["Properties"].get("ReservedConcurrentExecutions")
    )
    assert isinstance(reserved, int) and 1 <= reserved <= 10


def test_the_dead_letter_queue_depth_alarms_to_the_operators_not_to_the_rollback():
    alarms = [
        r["Properties"]
        for r in TEMPLATE["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("Namespace") == "AWS/SQS"
        and r["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    [alarm] = alarms
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    [action] = alarm["AlarmActions"]
    assert action != {"Ref": "AlarmTopic"}  # that topic rolls back whatever it hears
    assert TEMPLATE["Resources"][action["Ref"]]["Type"] == "AWS::SNS::Topic"
    assert any(output["Value"] == action for output in TEMPLATE["Outputs"].values())


def command_rules() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for name, resource in TEMPLATE["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event_name, event in resource["Properties"].get("Events", {}).items():
            pattern = event["Properties"].get("Pattern", {})
            if set(pattern.get("detail-type", [])) & set(COMMAND_TYPES):
                found.append((name, event_name, event["Properties"]))
    return found


def test_commands_expire_after_an_hour_at_every_hop():
    rules = command_rules()
    assert {name for name, _, _ in rules} == {
        "DecideApprovalFunction",
        "StartRolloutFunction",
        "RolloutControllerFunction",
        "RollbackFunction",
    }
    for function, event_name, properties in rules:
        assert properties["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600, (function, event_name)
        assert "DeadLetterConfig" in properties  # an expired command is kept, and alarms
        invoke = TEMPLATE["Resources"][function]["Properties"].get("EventInvokeConfig", {})
        assert invoke.get("MaximumEventAgeInSeconds", 21600) <= 3600, function  # Lambda's own queue: 6 h


def test_the_registry_table_cannot_be_deleted_by_accident():
    assert TEMPLATE["Resources"]["RegistryTable"]["Properties"].get("DeletionProtectionEnabled") is True


# --- the checks above fail on a template without the property --------------------------------------------


def without(mutate) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    template = copy.deepcopy(TEMPLATE)
    mutate(template)
    return template


def test_without_the_kinds_denies_an_administrator_sends_any_command():
    def drop_denies(template: dict[str, Any]) -> None:
        for name in [n for n in template["Resources"] if n.startswith("ShepherdBusDeny") and n.endswith("ToOthers")]:
            del template["Resources"][name]

    assert may_put(without(drop_denies), NAMED, ADMIN, ModelPromotionRequested.DETAIL_TYPE, admin=True)


def test_without_the_separation_denies_an_approver_listed_as_deployer_promotes():
    def drop(template: dict[str, Any]) -> None:
        del template["Resources"]["ShepherdBusDenyPromotionsToApprovers"]

    both = {**NAMED, "DeployerPrincipals": f"{DEPLOYER},{APPROVER}"}
    assert may_put(without(drop), both, APPROVER, ModelPromotionRequested.DETAIL_TYPE, admin=True)


def test_without_the_topic_denies_an_administrator_publishes_a_forged_alarm():
    def drop(template: dict[str, Any]) -> None:
        document = template["Resources"]["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]
        document["Statement"] = [s for s in document["Statement"] if s["Effect"] == "Allow"]

    policy = Deployment(without(drop), NAMED).statements("AlarmTopicPolicy")
    assert allowed(publish("AlarmTopic", ADMIN), policy, identity_allows=True)
