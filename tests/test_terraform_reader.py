"""The Terraform plan reader: instance-aware links, unknown vs unset, change actions, mappings, tags, bad input.

The plans are Terraform-shaped (format 1.2) but hand-written: see tests/terraform_plans.py for why and for the
shapes checked against the local `terraform` CLI. Each test asserts the exact findings per instance.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mlplatform.policies import output
from mlplatform.policies.config import PolicyConfig
from mlplatform.policies.engine import evaluate
from mlplatform.policies.model import UNKNOWN, Report, Resource, Skipped
from mlplatform.policies.registry import all_rules, rule_by_id
from mlplatform.policies.run import check, resources_from_terraform
from mlplatform.policies.sources.terraform import TerraformPlanError, from_terraform_plan
from mlplatform.policies.sources.terraform_address import AddressError, format_key, parse_address, tokenize
from tests.conftest import ROOT
from tests.terraform_plans import (
    PAB_EXPRESSIONS,
    Block,
    Instance,
    bucket,
    const,
    plan,
    public_access_block,
    ref,
)

MANDATORY = PolicyConfig(default_level="mandatory")
FIXTURES = Path(__file__).parent / "data" / "terraform-fixtures"


def _run(doc: dict[str, Any], *rule_ids: str) -> Report:
    resources, skipped = from_terraform_plan(doc)
    rules = [rule_by_id(r) for r in rule_ids] if rule_ids else list(all_rules())
    return evaluate(resources, rules, MANDATORY, skipped=skipped)


def _found(doc: dict[str, Any], *rule_ids: str) -> set[tuple[str, str]]:
    return {(v.rule, v.resource) for v in _run(doc, *rule_ids).violations}


def _by_name(doc: dict[str, Any]) -> dict[str, Resource]:
    resources, _ = from_terraform_plan(doc)
    return {r.name: r for r in resources}


PAB = "aws-s3-bucket-public-access-block"
VERSIONING = "aws-s3-bucket-versioning"


# --- addresses ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "module", "type_", "name", "key"),
    [
        ("aws_s3_bucket.b", (), "aws_s3_bucket", "b", None),
        ("aws_s3_bucket.b[3]", (), "aws_s3_bucket", "b", 3),
        ('aws_s3_bucket.b["a]b"]', (), "aws_s3_bucket", "b", "a]b"),
        ('aws_s3_bucket.b["q\\"x.y"]', (), "aws_s3_bucket", "b", 'q"x.y'),
        ('aws_s3_bucket.b["back\\\\slash"]', (), "aws_s3_bucket", "b", "back\\slash"),
        ('module.m["k.1"].module.n[0].aws_iam_role.r', (("m", "k.1"), ("n", 0)), "aws_iam_role", "r", None),
        ("data.aws_iam_policy_document.d", (), "aws_iam_policy_document", "d", None),
    ],
)
def test_addresses_are_tokenized_whatever_the_key(
    text: str, module: tuple[tuple[str, Any], ...], type_: str, name: str, key: Any
) -> None:
    address = parse_address(text)
    assert (address.module, address.type, address.name, address.key) == (module, type_, name, key)
    if key is not None:
        assert text.endswith(format_key(key))


@pytest.mark.parametrize("text", ['aws_s3_bucket.b["open', "aws_s3_bucket.b[x]", "aws_s3_bucket.", "var", ".a"])
def test_malformed_addresses_are_rejected(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


def test_references_keep_the_attribute_after_the_instance() -> None:
    steps = tokenize('aws_s3_bucket.b["x]"].id')
    assert [(s.name, s.key) for s in steps] == [("aws_s3_bucket", None), ("b", "x]"), ("id", None)]


# --- 1. instance-aware links ----------------------------------------------------------------------------------


def _counted_buckets(n: int) -> Block:
    return Block(
        "aws_s3_bucket.b",
        "aws_s3_bucket",
        {"bucket": ref("count.index")},
        [bucket(f"aws_s3_bucket.b[{i}]") for i in range(n)],
        count=n,
    )


def test_a_counted_companion_configures_the_bucket_of_its_own_index() -> None:
    doc = plan(
        _counted_buckets(3),
        Block(
            "aws_s3_bucket_public_access_block.p",
            "aws_s3_bucket_public_access_block",
            {"bucket": ref("aws_s3_bucket.b", "count.index"), **PAB_EXPRESSIONS},
            [public_access_block(f"aws_s3_bucket_public_access_block.p[{i}]") for i in range(2)],
            count=2,
        ),
    )
    assert _found(doc, PAB) == {(PAB, "aws_s3_bucket.b[2]")}
    block = _by_name(doc)["aws_s3_bucket_public_access_block.p[1]"]
    assert block.references["bucket"] == ("aws_s3_bucket.b[1]",)


def test_a_literal_index_names_one_instance() -> None:
    doc = plan(
        _counted_buckets(2),
        Block(
            "aws_s3_bucket_versioning.v",
            "aws_s3_bucket_versioning",
            {
                "bucket": ref("aws_s3_bucket.b[0].id", "aws_s3_bucket.b[0]", "aws_s3_bucket.b"),
                "versioning_configuration": [{"status": const("Enabled")}],
            },
            [
                Instance(
                    "aws_s3_bucket_versioning.v",
                    {"versioning_configuration": [{"status": "Enabled", "mfa_delete": None}]},
                    {"bucket": True, "id": True, "versioning_configuration": [{"mfa_delete": True}]},
                )
            ],
        ),
    )
    assert _found(doc, VERSIONING) == {(VERSIONING, "aws_s3_bucket.b[1]")}


ODD_KEYS = ["a]b", 'q"x.y', "plain"]


def _address(base: str, key: str) -> str:
    return base + format_key(key)


def test_for_each_keys_with_brackets_quotes_and_dots_link_by_key() -> None:
    buckets = Block(
        "aws_s3_bucket.b",
        "aws_s3_bucket",
        {"bucket": ref("each.key")},
        [bucket(_address("aws_s3_bucket.b", k)) for k in ODD_KEYS],
        for_each_refs=[],
    )
    blocks = Block(
        "aws_s3_bucket_public_access_block.p",
        "aws_s3_bucket_public_access_block",
        {"bucket": ref("aws_s3_bucket.b", "each.key"), **PAB_EXPRESSIONS},
        [public_access_block(_address("aws_s3_bucket_public_access_block.p", k)) for k in ODD_KEYS[:2]],
        for_each_refs=[],
    )
    assert _found(plan(buckets, blocks), PAB) == {(PAB, 'aws_s3_bucket.b["plain"]')}


def test_for_each_over_the_buckets_links_each_value_to_its_own_bucket() -> None:
    buckets = Block(
        "aws_s3_bucket.b",
        "aws_s3_bucket",
        {"bucket": ref("each.key")},
        [bucket(_address("aws_s3_bucket.b", k)) for k in ODD_KEYS],
        for_each_refs=[],
    )
    enabled = {"versioning_configuration": [{"status": "Enabled", "mfa_delete": None}]}
    versioning = Block(
        "aws_s3_bucket_versioning.v",
        "aws_s3_bucket_versioning",
        {"bucket": ref("each.value.id", "each.value"), "versioning_configuration": [{"status": const("Enabled")}]},
        [
            Instance(_address("aws_s3_bucket_versioning.v", k), enabled, {"bucket": True, "id": True})
            for k in ODD_KEYS[1:]
        ],
        for_each_refs=["aws_s3_bucket.b"],
    )
    assert _found(plan(buckets, versioning), VERSIONING) == {(VERSIONING, 'aws_s3_bucket.b["a]b"]')}


def test_planned_values_link_a_companion_whose_reference_says_nothing() -> None:
    buckets = Block(
        "aws_s3_bucket.b",
        "aws_s3_bucket",
        {"bucket": ref("var.names", "count.index")},
        [bucket("aws_s3_bucket.b[0]", "raw-0"), bucket("aws_s3_bucket.b[1]", "raw-1")],
        count=2,
    )
    block = Block(
        "aws_s3_bucket_public_access_block.p",
        "aws_s3_bucket_public_access_block",
        {"bucket": ref("var.logs_bucket"), **PAB_EXPRESSIONS},
        [public_access_block("aws_s3_bucket_public_access_block.p", "raw-1")],
    )
    assert _found(plan(buckets, block), PAB) == {(PAB, "aws_s3_bucket.b[0]")}


def test_module_outputs_lead_to_the_resource_behind_them() -> None:
    outputs = {"bucket_id": {"expression": ref("aws_s3_bucket.this.id", "aws_s3_bucket.this")}}
    stores = Block(
        "aws_s3_bucket.this",
        "aws_s3_bucket",
        {"bucket": ref("var.name")},
        [bucket(f'module.store["{k}"].aws_s3_bucket.this') for k in ("a", "b", "c")],
        module=("store",),
    )
    one = Block(  # module.store["a"].bucket_id
        "aws_s3_bucket_public_access_block.one",
        "aws_s3_bucket_public_access_block",
        {"bucket": ref('module.store["a"].bucket_id', 'module.store["a"]'), **PAB_EXPRESSIONS},
        [public_access_block("aws_s3_bucket_public_access_block.one")],
    )
    per_key = Block(  # module.store[each.key].bucket_id, for_each = toset(["b"])
        "aws_s3_bucket_public_access_block.each",
        "aws_s3_bucket_public_access_block",
        {"bucket": ref("module.store", "each.key"), **PAB_EXPRESSIONS},
        [public_access_block('aws_s3_bucket_public_access_block.each["b"]')],
        for_each_refs=[],
    )
    doc = plan(stores, one, per_key, module_calls={("store",): {"outputs": outputs}})
    assert _found(doc, PAB) == {(PAB, 'module.store["c"].aws_s3_bucket.this')}


def test_companions_of_many_counted_buckets_are_linked_one_to_one() -> None:
    n = 300
    doc = plan(
        _counted_buckets(n),
        Block(
            "aws_s3_bucket_public_access_block.p",
            "aws_s3_bucket_public_access_block",
            {"bucket": ref("aws_s3_bucket.b", "count.index"), **PAB_EXPRESSIONS},
            [public_access_block(f"aws_s3_bucket_public_access_block.p[{i}]") for i in range(n // 2)],
            count=n // 2,
        ),
    )
    # count.index of p[i] is i, so p covers b[0..149]; the other 150 buckets have no block
    expected = {(PAB, f"aws_s3_bucket.b[{i}]") for i in range(n // 2, n)}
    resources, _ = from_terraform_plan(doc)
    # a companion resolves to exactly one bucket: the quadratic fan-out of config-level links is gone
    assert all(len(r.references["bucket"]) == 1 for r in resources if "public_access_block" in r.name)
    assert _found(doc, PAB) == expected


# --- 2. unknown and configured vs unset -----------------------------------------------------------------------


def _instance(address: str, expressions: dict[str, Any], after: dict[str, Any], unknown: dict[str, Any]) -> Block:
    return Block(address, "aws_instance", expressions, [Instance(address, after, unknown)])


def _unset_instance() -> Block:
    return _instance(
        "aws_instance.unset",
        {"ami": const("ami-1"), "instance_type": const("t3.micro")},
        {"ami": "ami-1", "instance_type": "t3.micro", "ebs_block_device": [], "root_block_device": []},
        {"id": True, "metadata_options": True, "root_block_device": True, "tags_all": True},
    )


def _configured_instance() -> Block:
    return _instance(
        "aws_instance.configured",
        {
            "ami": const("ami-1"),
            "metadata_options": [{"http_tokens": ref("local.tokens")}],
            "root_block_device": [{"encrypted": ref("random_id.k.hex")}],
        },
        {"ami": "ami-1", "metadata_options": [{}], "root_block_device": [{}]},
        {"id": True, "metadata_options": [{"http_tokens": True}], "root_block_device": [{"encrypted": True}]},
    )


def test_attributes_nothing_configures_are_judged_unset() -> None:
    found = _found(plan(_unset_instance()), "aws-ec2-imdsv2-required", "aws-ec2-encrypted-volumes")
    assert found == {
        ("aws-ec2-imdsv2-required", "aws_instance.unset"),
        ("aws-ec2-encrypted-volumes", "aws_instance.unset"),
    }
    report = _run(plan(_unset_instance()), "aws-ec2-encrypted-volumes")
    assert [v.message for v in report.violations] == ["volume root is not encrypted"]
    assert report.unjudged == ()


def test_configured_unknowns_stay_unknown_and_are_listed_as_unjudged() -> None:
    report = _run(plan(_configured_instance()), "aws-ec2-imdsv2-required", "aws-ec2-encrypted-volumes")
    assert report.violations == ()
    assert {(u.rule, u.resource, u.attribute) for u in report.unjudged} == {
        ("aws-ec2-imdsv2-required", "aws_instance.configured", "metadataOptions.httpTokens"),
        ("aws-ec2-encrypted-volumes", "aws_instance.configured", "rootBlockDevice.encrypted"),
    }
    data = json.loads(output.to_json(report))
    assert data["unjudged"] == [
        {
            "rule": "aws-ec2-encrypted-volumes",
            "resource": "aws_instance.configured",
            "attribute": "rootBlockDevice.encrypted",
        },
        {
            "rule": "aws-ec2-imdsv2-required",
            "resource": "aws_instance.configured",
            "attribute": "metadataOptions.httpTokens",
        },
    ]
    assert "; 2 unjudged (configured, known only after apply)" in output.to_table(report)


def test_an_instance_without_a_subnet_lands_in_a_public_default_subnet() -> None:
    placed = _instance(
        "aws_instance.placed",
        {"ami": const("ami-1"), "subnet_id": ref("aws_subnet.private.id", "aws_subnet.private")},
        {"ami": "ami-1"},
        {"id": True, "subnet_id": True, "associate_public_ip_address": True, "network_interface": True},
    )
    assert _found(plan(_unset_instance(), placed), "aws-ec2-no-public-ip") == {
        ("aws-ec2-no-public-ip", "aws_instance.unset")
    }


def test_the_versioning_rule_sees_a_bucket_with_no_versioning() -> None:
    doc = plan(
        Block("aws_s3_bucket.b", "aws_s3_bucket", {"bucket": const("data")}, [bucket("aws_s3_bucket.b", "data")])
    )
    assert _by_name(doc)["aws_s3_bucket.b"].inputs.get("versioning") is None
    assert _found(doc, VERSIONING) == {(VERSIONING, "aws_s3_bucket.b")}


def test_documented_defaults_fill_unset_attributes() -> None:
    db = Block(
        "aws_db_instance.db",
        "aws_db_instance",
        {"engine": const("postgres")},
        [Instance("aws_db_instance.db", {"engine": "postgres"}, {"storage_encrypted": True, "id": True})],
    )
    inputs = _by_name(plan(db))["aws_db_instance.db"].inputs
    assert (inputs["storageEncrypted"], inputs["publiclyAccessible"], inputs["deletionProtection"]) == (
        False,
        False,
        False,
    )
    assert _found(plan(db), "aws-rds-instance-storage-encrypted") == {
        ("aws-rds-instance-storage-encrypted", "aws_db_instance.db")
    }


def test_without_a_configuration_block_unknowns_stay_unknown() -> None:
    doc = plan(_unset_instance())
    del doc["configuration"]
    assert _by_name(doc)["aws_instance.unset"].inputs["metadataOptions"] is UNKNOWN
    assert _found(doc, "aws-ec2-imdsv2-required") == set()


# --- 3. change actions ----------------------------------------------------------------------------------------


def test_every_change_action_is_handled() -> None:
    def unencrypted(address: str, actions: tuple[str, ...], after: bool = True) -> Block:
        values = {"size": 10, "encrypted": False} if after else None
        before = {"size": 10, "encrypted": False}
        return Block(
            address,
            "aws_ebs_volume",
            {"size": const(10)},
            [Instance(address, values, {}, actions, before)],
        )

    doc = plan(
        unencrypted("aws_ebs_volume.created", ("create",)),
        unencrypted("aws_ebs_volume.updated", ("update",)),
        unencrypted("aws_ebs_volume.replaced", ("delete", "create")),
        unencrypted("aws_ebs_volume.replaced_first", ("create", "delete")),
        unencrypted("aws_ebs_volume.unchanged", ("no-op",)),
        unencrypted("aws_ebs_volume.deleted", ("delete",), after=False),
        unencrypted("aws_ebs_volume.forgotten", ("forget",), after=False),
    )
    report = _run(doc, "aws-ec2-encrypted-volumes")
    assert {v.resource for v in report.violations} == {
        "aws_ebs_volume.created",
        "aws_ebs_volume.updated",
        "aws_ebs_volume.replaced",
        "aws_ebs_volume.replaced_first",
        "aws_ebs_volume.unchanged",
    }
    assert [(s.resource, s.reason) for s in report.skipped] == [
        ("aws_ebs_volume.deleted", "deleted by this plan"),
        (
            "aws_ebs_volume.forgotten",
            "removed from the Terraform state without being destroyed (forget): no longer managed here",
        ),
    ]


def test_a_plan_that_only_forgets_and_deletes_passes() -> None:
    """Before: `forget` was judged as an empty resource, an unencrypted volume, and the plan failed (exit 1)."""
    resources, skipped = resources_from_terraform(FIXTURES / "forget_and_delete.json")
    report = check(resources, MANDATORY, skipped=skipped)
    assert resources == [] and report.violations == ()
    assert [s.resource for s in skipped] == ["aws_ebs_volume.kept", "aws_s3_bucket.old"]


def test_a_replacement_is_judged_on_its_new_values() -> None:
    address = "aws_s3_bucket_acl.a"
    doc = plan(
        Block(
            address,
            "aws_s3_bucket_acl",
            {"acl": const("private")},
            [Instance(address, {"acl": "private"}, {"id": True}, ("create", "delete"), {"acl": "public-read"})],
        )
    )
    assert _found(doc, "aws-s3-bucket-no-public-acl") == set()


# --- 4. types and IAM -----------------------------------------------------------------------------------------


def _one(address: str, tf_type: str, after: dict[str, Any], expressions: dict[str, Any] | None = None) -> Block:
    exprs = expressions if expressions is not None else {k: const(v) for k, v in after.items()}
    return Block(address, tf_type, exprs, [Instance(address, after, {"id": True})])


ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def _acl_grant(uri: str) -> dict[str, Any]:
    return {
        "access_control_policy": [
            {
                "grant": [
                    {"grantee": [{"type": "Group", "uri": uri, "id": "", "email_address": ""}], "permission": "READ"}
                ],
                "owner": [{"id": "o1", "display_name": ""}],
            }
        ]
    }


def test_types_the_reader_did_not_map_before_are_checked() -> None:
    doc = plan(
        _one(
            "aws_iam_group_policy_attachment.admins",
            "aws_iam_group_policy_attachment",
            {"group": "g", "policy_arn": ADMIN_ARN},
        ),
        _one("aws_ebs_volume.plain", "aws_ebs_volume", {"size": 10}),
        _one("aws_ebs_volume.sealed", "aws_ebs_volume", {"size": 10, "encrypted": True}),
        _one("aws_elb.no_logs", "aws_elb", {"name": "a"}),
        _one("aws_elb.logs", "aws_elb", {"name": "b", "access_logs": [{"bucket": "logs", "interval": 60}]}),
        _one("aws_s3_bucket_acl.everyone", "aws_s3_bucket_acl", {"bucket": "b", **_acl_grant(ALL_USERS)}),
        _one("aws_s3_bucket_acl.canned", "aws_s3_bucket_acl", {"bucket": "b", "acl": "public-read"}),
        _one("aws_s3_bucket_acl.private", "aws_s3_bucket_acl", {"bucket": "b", "acl": "private"}),
    )
    rules = (
        "aws-iam-no-admin-managed-policy",
        "aws-ec2-encrypted-volumes",
        "aws-lb-access-logs",
        "aws-s3-bucket-no-public-acl",
    )
    assert _found(doc, *rules) == {
        ("aws-iam-no-admin-managed-policy", "aws_iam_group_policy_attachment.admins"),
        ("aws-ec2-encrypted-volumes", "aws_ebs_volume.plain"),
        ("aws-lb-access-logs", "aws_elb.no_logs"),
        ("aws-s3-bucket-no-public-acl", "aws_s3_bucket_acl.everyone"),
        ("aws-s3-bucket-no-public-acl", "aws_s3_bucket_acl.canned"),
    }
    messages = {v.resource: v.message for v in _run(doc, "aws-s3-bucket-no-public-acl").violations}
    assert (
        messages["aws_s3_bucket_acl.everyone"]
        == "the bucket ACL grants AllUsers (READ) to everyone outside the account"
    )


def _policy(address: str, statement: dict[str, Any]) -> Block:
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    return _one(address, "aws_iam_policy", {"name": address, "policy": document})


ESCALATION = "aws-iam-policy-no-privilege-escalation"
WILDCARD = "aws-iam-policy-no-wildcard-actions"


def test_iam_not_action_lower_case_and_lambda_escalation() -> None:
    doc = plan(
        _policy("aws_iam_policy.not_action", {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}),
        _policy("aws_iam_policy.lower", {"Effect": "Allow", "Action": "IAM:passrole", "Resource": "*"}),
        _policy("aws_iam_policy.lambda", {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}),
        _policy("aws_iam_policy.scoped", {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}),
    )
    report = _run(doc, ESCALATION, WILDCARD)
    found = {(v.rule, v.resource): v.message for v in report.violations}
    assert set(found) == {
        (ESCALATION, "aws_iam_policy.not_action"),
        (WILDCARD, "aws_iam_policy.not_action"),
        (ESCALATION, "aws_iam_policy.lower"),
        (ESCALATION, "aws_iam_policy.lambda"),
        (WILDCARD, "aws_iam_policy.lambda"),
    }
    assert found[(ESCALATION, "aws_iam_policy.lower")] == "the policy allows iam:PassRole on unscoped resources"
    assert (
        found[(ESCALATION, "aws_iam_policy.lambda")]
        == "the policy allows lambda:UpdateFunctionCode on unscoped resources"
    )
    assert found[(WILDCARD, "aws_iam_policy.not_action")] == (
        "the policy allows every action except s3:* (Allow with NotAction)"
    )


def test_a_policy_from_a_known_policy_document_data_source_is_judged() -> None:
    admin = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    document = {"address": "data.aws_iam_policy_document.admin", "mode": "data", "type": "aws_iam_policy_document"}
    doc = plan(
        Block("data.aws_iam_policy_document.admin", "aws_iam_policy_document", {}, [], mode="data"),
        Block(
            "aws_iam_policy.p",
            "aws_iam_policy",
            {
                "name": const("p"),
                "policy": ref("data.aws_iam_policy_document.admin.json", "data.aws_iam_policy_document.admin"),
            },
            [Instance("aws_iam_policy.p", {"name": "p"}, {"id": True, "policy": True})],
        ),
        prior_data=[{**document, "name": "admin", "values": {"json": admin}}],
    )
    assert _found(doc, "aws-iam-policy-no-admin") == {("aws-iam-policy-no-admin", "aws_iam_policy.p")}
    # the same policy with the document unknown at plan time is unjudged, not passed
    doc["prior_state"]["values"]["root_module"]["resources"] = []
    report = _run(doc, "aws-iam-policy-no-admin")
    assert report.violations == ()
    assert [(u.rule, u.resource, u.attribute) for u in report.unjudged] == [
        ("aws-iam-policy-no-admin", "aws_iam_policy.p", "policy")
    ]


# --- 5. tags --------------------------------------------------------------------------------------------------

COST_TAGS = {"cost-center": "cc", "team": "t", "environment": "dev", "project": "p", "owner": "o"}


def _queue(address: str, module: tuple[str, ...] = (), provider: str = "aws") -> Block:
    return Block(
        address.rsplit(".", 2)[-2] + "." + address.rsplit(".", 1)[-1],
        "aws_sqs_queue",
        {"name": const("q")},
        [Instance(address, {"name": "q", "tags": None}, {"id": True, "tags_all": True})],
        module=module,
        provider=provider,
    )


def test_autoscaling_group_tag_blocks_are_its_tags() -> None:
    tags = [{"key": k, "value": v, "propagate_at_launch": True} for k, v in COST_TAGS.items()]
    doc = plan(
        _one("aws_autoscaling_group.tagged", "aws_autoscaling_group", {"max_size": 1, "min_size": 0, "tag": tags}),
        _one("aws_autoscaling_group.bare", "aws_autoscaling_group", {"max_size": 1, "min_size": 0}),
    )
    assert _by_name(doc)["aws_autoscaling_group.tagged"].tags == COST_TAGS
    assert _found(doc, "mlp-required-cost-tags") == {("mlp-required-cost-tags", "aws_autoscaling_group.bare")}


def test_default_tags_from_a_variable_and_a_modules_own_provider() -> None:
    providers = {
        "aws": {"name": "aws", "expressions": {"default_tags": [{"tags": ref("var.default_tags")}]}},
        "module.legacy:aws": {
            "name": "aws",
            "module_address": "module.legacy",
            "expressions": {"default_tags": [{"tags": const({"team": "legacy"})}]},
        },
    }
    doc = plan(
        _queue("aws_sqs_queue.root"),
        _queue("module.shared.aws_sqs_queue.q", module=("shared",)),
        _queue("module.legacy.aws_sqs_queue.q", module=("legacy",), provider="module.legacy:aws"),
        variables={"default_tags": COST_TAGS},
        providers=providers,
    )
    tags = {name: r.tags for name, r in _by_name(doc).items()}
    assert tags == {
        "aws_sqs_queue.root": COST_TAGS,
        "module.shared.aws_sqs_queue.q": COST_TAGS,  # a module without a provider block inherits the root's
        "module.legacy.aws_sqs_queue.q": {"team": "legacy"},
    }
    assert _found(doc, "mlp-required-cost-tags") == {("mlp-required-cost-tags", "module.legacy.aws_sqs_queue.q")}


# --- 6. malformed plans, SARIF ----------------------------------------------------------------------------------


def _change(**overrides: Any) -> dict[str, Any]:
    change = {
        "address": "aws_sqs_queue.q",
        "type": "aws_sqs_queue",
        "mode": "managed",
        "change": {"actions": ["create"], "after": {}},
    }
    change.update(overrides)
    return change


@pytest.mark.parametrize(
    ("doc", "where", "message"),
    [
        ({"resource_changes": {"a": 1}}, "$.resource_changes", "must be a list, not dict"),
        ({"resource_changes": [_change(address=None)]}, "$.resource_changes[0].address", "must be a non-empty string"),
        ({"resource_changes": [{"type": "x", "change": {"actions": []}}]}, "$.resource_changes[0].address", "missing"),
        ({"resource_changes": [_change(type=3)]}, "$.resource_changes[0].type", "must be a non-empty string"),
        (
            {"resource_changes": [_change(change={"actions": "create"})]},
            "$.resource_changes[0].change.actions",
            "must be a list of strings",
        ),
        (
            {"resource_changes": [_change(change={"actions": ["explode"]})]},
            "$.resource_changes[0].change.actions",
            "unknown action ['explode']",
        ),
        (
            {"resource_changes": [_change(change={"actions": ["create"], "after": [1]})]},
            "$.resource_changes[0].change.after",
            "must be an object or null, not list",
        ),
        (
            {"resource_changes": [_change(address='aws_sqs_queue.q["open')]},
            "$.resource_changes[0].address",
            "not a resource address",
        ),
        (
            {"resource_changes": [], "configuration": {"root_module": {"resources": {}}}},
            "$.configuration.root_module.resources",
            "must be a list",
        ),
        ({"resource_changes": [], "variables": []}, "$.variables", "must be an object"),
    ],
)
def test_malformed_plans_name_the_json_path(doc: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(TerraformPlanError) as info:
        from_terraform_plan(doc, source="bad.json")
    text = str(info.value)
    assert f"bad.json: {where}: {message}" in text
    assert "(stack file)" not in text


def _mlp(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlplatform.mlp.entry", "policy", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_malformed_files_exit_2_with_the_file_and_path(tmp_path: Path) -> None:
    cases = {
        "not-json.json": ("{", "is not valid JSON"),
        "list.json": ("[1, 2]", "is a JSON list, not an object"),
        "changes.json": (json.dumps({"resource_changes": "x"}), "$.resource_changes: must be a list, not str"),
        "no-address.json": (
            json.dumps({"resource_changes": [{"type": "aws_s3_bucket", "change": {"actions": ["create"]}}]}),
            "$.resource_changes[0].address: missing",
        ),
    }
    for name, (text, _message) in cases.items():
        (tmp_path / name).write_text(text)
    # one process for all four keeps the test quick: a shell loop prints each exit status and message
    script = "; ".join(
        f"{sys.executable} -m mlp.entry policy --terraform-plan {tmp_path / name}; echo EXIT=$?" for name in cases
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.stdout.count("EXIT=2") == len(cases), done.stdout + done.stderr
    for name, (_text, message) in cases.items():
        assert f"{tmp_path / name}: {message}" in done.stderr or f"{tmp_path / name}: not a usable" in done.stderr
        assert message in done.stderr
    assert "Traceback" not in done.stderr and "(stack file)" not in done.stderr


def test_sarif_locates_the_plan_relative_to_the_source_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plans").mkdir()
    path = tmp_path / "plans" / "my plan.json"
    path.write_text(json.dumps(plan(_one("aws_ebs_volume.v", "aws_ebs_volume", {"size": 1}))))
    resources, skipped = resources_from_terraform(path)
    report = check(resources, MANDATORY, skipped=skipped)
    for given in (str(path), "plans/my plan.json", "./plans/my plan.json"):
        sarif = json.loads(output.to_sarif(report, all_rules(), given))
        driver = sarif["runs"][0]["tool"]["driver"]
        assert "informationUri" not in driver  # the project publishes no documentation URL yet
        location = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location == {"uri": "plans/my%20plan.json", "uriBaseId": "%SRCROOT%"}


# --- the Kubernetes hand-off ------------------------------------------------------------------------------------


def test_kubernetes_types_are_handed_to_the_kubernetes_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, Any]] = []

    def kubernetes_resources(tf_type: str, address: str, values: Any) -> tuple[list[Resource], list[Skipped]]:
        seen.append((tf_type, address, dict(values)))
        return [Resource(type="kubernetes:core/v1:Namespace", name=address, inputs={}, source="terraform")], []

    fake = types.ModuleType("mlplatform.policies.sources.terraform_kubernetes")
    fake.KUBERNETES_TYPES = frozenset({"kubernetes_namespace_v1"})  # type: ignore[attr-defined]
    fake.kubernetes_resources = kubernetes_resources  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlplatform.policies.sources.terraform_kubernetes", fake)
    doc = plan(
        Block(
            "kubernetes_namespace_v1.ns",
            "kubernetes_namespace_v1",
            {"metadata": [{"name": const("ml")}]},
            [
                Instance(
                    "kubernetes_namespace_v1.ns",
                    {"metadata": [{"name": "ml"}]},
                    {"id": True, "metadata": [{"uid": True}]},
                )
            ],
        )
    )
    resources, skipped = from_terraform_plan(doc)
    assert [r.name for r in resources] == ["kubernetes_namespace_v1.ns"] and skipped == []
    # unknowns nothing configures are unset before the hand-off
    assert seen == [("kubernetes_namespace_v1", "kubernetes_namespace_v1.ns", {"metadata": [{"name": "ml"}]})]
