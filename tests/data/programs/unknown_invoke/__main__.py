import pulumi_aws as aws

aws.ec2.get_vpc_output(default=True)
