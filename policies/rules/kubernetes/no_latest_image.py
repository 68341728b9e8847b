"""Images are pinned: a tag other than `latest`, or a digest."""

from collections.abc import Iterator, Mapping
from typing import Any

from mlplatform.policies.helpers import WORKLOAD_TYPES, containers, pod_specs
from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


def unpinned(image: str) -> bool:
    if "@sha256:" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.endswith(":latest")


RELEASE = "kubernetes:helm.sh/v3:Release"


def _values_images(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Images a chart's values set to `latest`: an `image` string ending in `:latest`, or an image mapping
    (`repository` + `tag`, the common chart shape) whose tag is `latest`. A mapping without a tag leaves the
    chart's own default (its appVersion), which is pinned with the chart."""
    if isinstance(value, Mapping):
        tag = value.get("tag")
        if "repository" in value and isinstance(tag, str) and tag == "latest":
            yield path, f"{value['repository']}:latest"
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if key == "image" and isinstance(item, str) and not is_unknown(item) and item.endswith(":latest"):
                yield child, item
            else:
                yield from _values_images(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _values_images(item, f"{path}[{index}]")


@resource_rule(
    id="kubernetes-workload-no-latest-image",
    severity="high",
    types=[*WORKLOAD_TYPES, RELEASE],
    description="Container images name a fixed tag or digest, never `latest` or no tag (mandatory in prod); in a "
    "Helm release's values, an `image` set to `...:latest` or an image's `tag: latest`.",
    remediation="Pin the image to a released version tag or a sha256 digest.",
    references=["checkov CKV_K8S_14", "checkov CKV_K8S_43"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if r.type == RELEASE:
        for where, ref in _values_images(r.inputs.get("values"), "values"):
            yield f"chart {r.inputs.get('chart')}: {where} uses an unpinned image {ref}"
        return
    for where, pod in pod_specs(r):
        for name, container in containers(pod):
            image = container.get("image")
            if isinstance(image, str) and not is_unknown(image) and unpinned(image):
                yield f"{where}.{name} uses an unpinned image {image}"


RULE = check
