"""A tiny program exercising what the planner must reproduce of the engine: transforms, secrets, options."""

import pulumi
import pulumi_aws as aws


def add_stack_tag(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if args.type_ == "aws:s3/bucket:Bucket":
        tags = {**(args.props.get("tags") or {}), "added-by": "stack-transform"}
        return pulumi.ResourceTransformResult({**args.props, "tags": tags}, args.opts)
    return None


def protect_it(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
    return pulumi.ResourceTransformResult(
        args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=True))
    )


def component_tag(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if args.type_ == "aws:s3/bucket:Bucket":
        tags = {**(args.props.get("tags") or {}), "from-parent": "yes"}
        return pulumi.ResourceTransformResult({**args.props, "tags": tags}, args.opts)
    return None


pulumi.runtime.register_resource_transform(add_stack_tag)
provider = aws.Provider("aws", region="eu-west-1")
aws.s3.Bucket("plain", tags={"own": "tag"}, opts=pulumi.ResourceOptions(provider=provider))
aws.s3.Bucket("guarded", opts=pulumi.ResourceOptions(provider=provider, transforms=[protect_it], retain_on_delete=True))


class Holder(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions) -> None:
        super().__init__("test:index:Holder", name, None, opts)
        aws.s3.Bucket(f"{name}-inner", opts=pulumi.ResourceOptions(parent=self))
        aws.secretsmanager.SecretVersion(
            f"{name}-secret",
            secret_id="arn:aws:secretsmanager:eu-west-1:123456789012:secret:x",
            secret_string=pulumi.Output.secret("s3cr3t-value-never-shown"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


Holder("holder", opts=pulumi.ResourceOptions(providers=[provider], transforms=[component_tag]))
zones = aws.get_availability_zones_output(opts=pulumi.InvokeOutputOptions(provider=provider))
aws.ec2.Subnet(
    "first-zone",
    vpc_id="vpc-1",
    cidr_block="10.0.0.0/24",
    availability_zone=zones.names[0],
    opts=pulumi.ResourceOptions(provider=provider),
)
