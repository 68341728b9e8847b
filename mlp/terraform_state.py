"""Answers for `pulumi_terraform` state references in the offline planner: read the real state file.

`terraform:state:getLocalReference` reads a local file; `terraform:state:getS3Reference` reads the object from S3
with boto3 (credentials and endpoint as boto3 finds them: environment, profile, `AWS_ENDPOINT_URL`);
`terraform:state:getRemoteReference` reads the workspace's current state version through the HCP Terraform /
Terraform Enterprise API (developer.hashicorp.com/terraform/cloud-docs/api-docs: "Show Workspace"
`GET /organizations/:organization_name/workspaces/:name`, "Fetch the Current State Version for a Workspace"
`GET /workspaces/:workspace_id/current-state-version`, then its `hosted-state-download-url`) over HTTPS with the
token the program passed (from `TF_TOKEN_<host>`). All return the state's output values, exactly what the provider
returns to the program, which then checks them the same way under `pulumi up`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlplatform.infra.network.terraform_state import TerraformStateError, parse_state
from mlplatform.mlp.mocks import PlannerError

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def invoke_handlers(project_root: Path) -> dict[str, Handler]:
    return {
        "terraform:state:getLocalReference": lambda args: _local(project_root, args),
        "terraform:state:getS3Reference": _s3,
        "terraform:state:getRemoteReference": _remote,
    }


def _local(project_root: Path, args: dict[str, Any]) -> dict[str, Any]:
    path = Path(str(args.get("path") or "terraform.tfstate"))
    if not path.is_absolute():
        path = project_root / path
    if not path.is_file():
        raise PlannerError(f"Terraform state not found: {path} (network.adopt.terraform_state.path)")
    try:
        return {"outputs": parse_state(path.read_text(encoding="utf-8"), str(path))}
    except TerraformStateError as exc:
        raise PlannerError(str(exc)) from None


def _s3(args: dict[str, Any]) -> dict[str, Any]:
    import boto3
    import botocore.exceptions

    bucket, key, region = args.get("bucket"), args.get("key"), args.get("region")
    source = f"s3://{bucket}/{key}"
    try:
        client = boto3.client("s3", region_name=region, endpoint_url=args.get("endpoint") or None)
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except botocore.exceptions.NoCredentialsError:
        raise PlannerError(
            f"no AWS credentials to read the Terraform state {source}; set AWS_PROFILE or AWS_ACCESS_KEY_ID "
            "(the offline planner reads adopted state, nothing else, from AWS)"
        ) from None
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise PlannerError(f"cannot read the Terraform state {source} ({region}): {code}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise PlannerError(f"cannot read the Terraform state {source} ({region}): {exc}") from None
    try:
        return {"outputs": parse_state(body, source)}
    except TerraformStateError as exc:
        raise PlannerError(str(exc)) from None


def _remote(args: dict[str, Any]) -> dict[str, Any]:
    import urllib.error
    import urllib.parse
    import urllib.request

    host = str(args.get("hostname") or "app.terraform.io")
    organization = str(args.get("organization") or "")
    workspace = str((args.get("workspaces") or {}).get("name") or "")
    token = str(args.get("token") or "")
    source = f"terraform state of workspace {organization}/{workspace} on {host}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/vnd.api+json"}

    def get(url: str) -> bytes:
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            what = {401: "the token was refused", 404: "not found, or the token cannot see it"}.get(
                exc.code, f"HTTP {exc.code}"
            )
            raise PlannerError(f"cannot read the {source}: {what} ({urllib.parse.urlsplit(url).path})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PlannerError(f"cannot read the {source}: {reason}") from None

    api = f"https://{host}/api/v2"
    quote = urllib.parse.quote
    try:
        shown = json.loads(get(f"{api}/organizations/{quote(organization)}/workspaces/{quote(workspace)}"))
        workspace_id = shown["data"]["id"]
        version = json.loads(get(f"{api}/workspaces/{quote(workspace_id)}/current-state-version"))
        download = version["data"]["attributes"]["hosted-state-download-url"]
    except (ValueError, KeyError, TypeError):
        raise PlannerError(f"cannot read the {source}: the API answered in an unexpected shape") from None
    if not str(download).startswith("https://"):
        raise PlannerError(f"cannot read the {source}: the state download URL is not HTTPS")
    try:
        return {"outputs": parse_state(get(str(download)).decode("utf-8"), source)}
    except TerraformStateError as exc:
        raise PlannerError(str(exc)) from None
